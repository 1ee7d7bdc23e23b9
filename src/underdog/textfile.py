"""Reading the text files a user hands us (datasets, eval sets, documents, topics, config), strictly.

    text = read_user_text(path)                       # UTF-8 (a leading BOM is dropped)
    text = read_user_text(path, encoding="latin-1")   # what `--encoding` passes
    rows = csv_records(text)                          # [(line, {column: value}), ...] or Malformed
    value = json_value(line_text, number)             # json.loads, or Malformed naming the line

A file that is not text in the encoding is one error naming the file and line, never silently replaced
characters (U+FFFD) in the data; a PDF or other binary file is named as such. Every CSV and JSON record a user
hands us is parsed here, so a broken file is one `file:line: problem` wherever it is read: a quote never
closed (which would fold the rest of the file into one field), text after a closing quote, JSON nested too
deeply for Python's parser. A CSV field may be as long as the file (the file is in memory already).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Any

from underdog.errors import UnderdogError

UTF8 = "utf-8"
SNIFF_BYTES = 8192


def read_user_text(path: Path, encoding: str = UTF8, error: type[UnderdogError] = UnderdogError,
                   option: str | None = "--encoding") -> str:
    """The text of `path` in `encoding`; raises `error` with `file:line: ...` when it is not such text (the
    message suggests the command's `option` for naming the encoding, when it has one)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_text(data, path, encoding, error, option)


class NotText(ValueError):
    """Bytes that are not text in the encoding: `line` (None for a binary file) and what is wrong."""

    def __init__(self, problem: str, line: int | None = None):
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.problem, self.line = problem, line

    def at(self, path: Path | str) -> str:
        """`file:line: problem`, or `file: problem` for a binary file."""
        return f"{path}:{self.line}: {self.problem}" if self.line else f"{path}: {self.problem}"


def decode_text(data: bytes, path: Path | str, encoding: str = UTF8,
                error: type[UnderdogError] = UnderdogError, option: str | None = "--encoding") -> str:
    """`data` decoded as `encoding`, or `error` naming `path`, the line and the offending byte."""
    try:
        return strict_decode(data, codec_name(encoding, error), option)
    except NotText as exc:
        raise error(exc.at(path)) from None


def strict_decode(data: bytes, codec: str = UTF8, option: str | None = "--encoding") -> str:
    """`data` as text without a BOM; NotText for a binary file or a byte that does not decode."""
    if kind := _binary_kind(data[:SNIFF_BYTES], codec):
        raise NotText(f"{kind}, not text")
    try:
        return data.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        name = "UTF-8" if codec == UTF8 else codec
        hint = "save it as UTF-8" + (f" or name its encoding with {option} (e.g. {option} latin-1)" if option else "")
        raise NotText(f"not {name} text (byte 0x{data[exc.start]:02x} at column {column}); {hint}", line) from None


def codec_name(encoding: str, error: type[UnderdogError] = UnderdogError) -> str:
    """The codec's canonical name (utf-8-sig counts as utf-8); `error` for an unknown encoding."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise error(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    return UTF8 if name in (UTF8, "utf-8-sig") else name


def _binary_kind(head: bytes, codec: str) -> str | None:
    """What kind of binary file `head` starts, or None when it may be text."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not codec.startswith("utf-16"):
        return "UTF-16 text (name it with --encoding utf-16)"
    if head.startswith(b"%PDF-"):
        return "a PDF"
    if head.startswith((b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"\x1f\x8b")):
        return "a binary file (zip, image or archive)"
    if b"\x00" in head and not codec.startswith(("utf-16", "utf-32")):
        return "a binary file"
    return None


class Malformed(NotText):
    """Text that is not the CSV or JSON it should be: `line` (None: the whole file) and what is wrong."""


CSV_PROBLEMS = {  # the csv module's words for a malformed file -> what the user should look for
    "unexpected end of data": "a quote opened in this record is never closed",
    "',' expected after '\"'": "text after a closing quote (a quote inside a quoted field is written \"\")",
}


def csv_records(text: str) -> list[tuple[int, dict[str, str | None]]]:
    """(line the record starts on, {column: value}) of each record of a CSV with a header row; a missing value
    is None and values beyond the header are dropped, as `csv.DictReader` does. Malformed for a broken file."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # the limit guards streams, not this
    reader = csv.reader(io.StringIO(text), strict=True)
    header: list[str] | None = None
    records, start = [], 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue
            if header is None:
                header = row
                continue
            records.append((line, dict(zip(header, row + [None] * (len(header) - len(row)), strict=False))))
    except csv.Error as exc:
        raise Malformed(f"not valid CSV: {CSV_PROBLEMS.get(str(exc), str(exc))}", start) from None
    return records


def json_value(text: str, line: int | None = None) -> Any:
    """`text` parsed as JSON; Malformed (at `line`, or the error's own line when None) when it is not JSON or is
    nested too deeply for Python's parser."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not valid JSON ({exc.msg} at column {exc.colno})", line or exc.lineno) from None
    except RecursionError:
        raise Malformed("JSON nested too deeply to read", line) from None
