"""`underdog import FILE` and `underdog export NAME --format ...`: datasets in the shapes other tools use.

    manifest = import_dataset(project, "old.jsonl", name="old")      # JSONL or CSV, shape detected per record
    paths = export_dataset(project, "base", "jumpstart")              # -> exports/base-jumpstart/train.jsonl ...

Import shapes: OpenAI `messages`, sharegpt `conversations`, TRL's conversational `prompt/completion` (lists of
messages), alpaca `instruction/input/output`, `instruction/context/response` (Dolly, JumpStart), `prompt/completion`
(strings), `question/answer`. A malformed line is
reported as `file:line: reason`, counted and skipped; the rest is imported. Whitespace at the ends of an
instruction, context or response is trimmed, and counted per key (`trimmed` in the manifest's counts).

Export formats: messages | alpaca | sharegpt | jumpstart | csv | trl, with a seeded train/validation split.
`jumpstart` writes `train.jsonl` (`instruction`, `context`, `response`) + `template.json` exactly as SageMaker
JumpStart's Llama fine-tuning expects, and the validation split as `validation/validation.jsonl` (+ its
template.json) for the separate validation channel. `trl` writes TRL's conversational formats: a supervised
dataset as prompt-completion rows (one per assistant turn: what `underdog train` trains on), a preference dataset
as prompt/chosen/rejected rows (what TRL's DPOTrainer reads); `trl` is the one format of a preference dataset.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from underdog.data.dataset import Example, Manifest, load_dataset, load_manifest, save_dataset
from underdog.data.jobs import check_new_name, provenance
from underdog.data.preferences import KIND, load_preferences, to_trl
from underdog.errors import InputError, UnderdogError
from underdog.project import Project
from underdog.textfile import UTF8, Malformed, csv_records, json_value, read_user_text

FORMATS = ("messages", "alpaca", "sharegpt", "jumpstart", "csv", "trl")
JUMPSTART_TEMPLATE = {
    "prompt": "Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n"
              "### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n",
    "completion": " {response}",
}
# one text field per part of an example: (question, context, answer) keys, "" when the shape has no context
FIELD_SHAPES = {"alpaca": ("instruction", "input", "output"),
                "instruction/context/response": ("instruction", "context", "response"),
                "prompt/completion": ("prompt", "", "completion"),
                "question/answer": ("question", "context", "answer")}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
                  "bing": "assistant", "bard": "assistant", "model": "assistant", "system": "system"}


# -- import -----------------------------------------------------------------------------------------------------
def to_messages(record: Any) -> tuple[str, list[dict[str, str]], str | None]:
    """(shape, messages, context) of one record in any known shape; raises ValueError naming what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"expected an object, got {type(record).__name__}")
    if "messages" in record:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in record["messages"]]
        return "messages", _checked(messages), None
    if "conversations" in record:
        messages = [{"role": SHAREGPT_ROLES[str(t["from"]).lower()], "content": str(t["value"])}
                    for t in record["conversations"]]
        return "sharegpt", _checked(messages), None
    if isinstance(record.get("prompt"), list) and isinstance(record.get("completion"), list):  # TRL's (`trl`)
        messages = [{"role": str(m["role"]), "content": str(m["content"])}
                    for m in record["prompt"] + record["completion"]]
        return "trl prompt-completion", _checked(messages), None
    if found := _field_shape(record):
        shape, (q, ctx, a) = found
        context = str(record.get(ctx) or "").strip() or None
        user = str(record[q]).strip() + (f"\n\n{context}" if context and shape != "question/answer" else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": str(record[a]).strip()}]
        return shape, _checked(messages), context
    raise ValueError(f"unknown shape (keys: {', '.join(sorted(record)) or 'none'})")


def _field_shape(record: dict) -> tuple[str, tuple[str, str, str]] | None:
    """(shape, its (question, context, answer) keys) of a record with one text field per part, or None."""
    return next(((shape, keys) for shape, keys in FIELD_SHAPES.items() if keys[0] in record and keys[2] in record),
                None)


def trimmed_keys(record: dict) -> list[str]:
    """The keys of a one-field-per-part record whose text import trims (whitespace at either end)."""
    found = _field_shape(record)
    keys = [k for k in found[1] if k in record and k] if found else []
    return [k for k in keys if isinstance(record[k], str) and record[k] != record[k].strip()]


def _checked(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    roles = [m["role"] for m in messages]
    if "user" not in roles or "assistant" not in roles:
        raise ValueError("needs a user and an assistant message")
    if any(not m["content"].strip() for m in messages if m["role"] in ("user", "assistant")):
        raise ValueError("empty message")
    return messages


def _records(path: Path, encoding: str = UTF8) -> list[tuple[int, Any]]:
    """(line number, record or the exception that stopped parsing it) of a JSONL or CSV file; InputError for a
    CSV that cannot be read record by record."""
    text = read_user_text(path, encoding, error=InputError)
    if path.suffix.lower() == ".csv":
        try:
            return [(line, {k: v for k, v in row.items() if k}) for line, row in csv_records(text)]
        except Malformed as exc:
            raise InputError(exc.at(path)) from None
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 and U+0085 are inside JSON
        if line.strip():
            try:
                records.append((number, json_value(line, number)))
            except Malformed as exc:
                records.append((number, ValueError(exc.problem)))
    return records


def import_dataset(project: Project, path: Path | str, name: str | None = None, encoding: str = UTF8) -> Manifest:
    """Import a JSONL/CSV file (text in `encoding`) as dataset version `name` (default: the file's stem)."""
    path = Path(path)
    if not path.exists():
        raise UnderdogError(f"{path}: not found")
    name = name or path.stem
    check_new_name(project.root, name)
    examples, problems, shapes, trimmed = [], [], Counter(), Counter()
    for number, record in _records(path, encoding):
        try:
            if isinstance(record, Exception):
                raise record
            shape, messages, context = to_messages(record)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            reason = (f"missing key {exc}" if isinstance(exc, KeyError) else "a value nested too deeply to read"
                      if isinstance(exc, RecursionError) else str(exc))
            problems.append(f"{path.name}:{number}: {reason}")
            continue
        shapes[shape] += 1
        trimmed.update(trimmed_keys(record))
        prior = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        topic = {"topic": str(record["topic"])} if record.get("topic") else {}
        meta = {**prior, **topic, **provenance(None, "import", file=path.name, line=number, context=context)}
        examples.append(Example(messages, meta))
    if not examples:
        raise InputError(f"{path}: no usable examples" + (f" ({problems[0]})" if problems else ""))
    counts = {"imported": len(examples), "malformed": len(problems), "shapes": dict(shapes),
              "trimmed": dict(trimmed), "problems": problems[:50]}
    return save_dataset(project.root, name, examples, recipe={"command": "import", "file": str(path.resolve())},
                        counts=counts)


# -- export -----------------------------------------------------------------------------------------------------
def prompt_completion_rows(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """TRL's conversational prompt-completion rows of a conversation: one per assistant turn that has a
    conversation before it (the prompt), the turn itself as the completion."""
    return [{"prompt": messages[:i], "completion": [message]}
            for i, message in enumerate(messages) if message["role"] == "assistant" and i > 0]


def split(examples: list[Any], ratio: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Seeded shuffle, then the first `ratio` share is validation (at least one when ratio > 0 and n > 1)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(ratio * len(examples))) if ratio > 0 and len(examples) > 1 else 0
    return [examples[i] for i in order[n_val:]], [examples[i] for i in order[:n_val]]


def _context(example: Example) -> str:
    return str(example.meta.get("context") or "")


def instruction_and_context(example: Example) -> tuple[str, str]:
    """(instruction, context) of an example whose prompt is `instruction + "\n\n" + context` (as import builds it
    from alpaca / JumpStart records), else (the prompt, ""): a context the model is not shown when underdog
    trains (an ingested chunk) is not put into the exported prompt either."""
    question, context = example.question, _context(example)
    if context and question.endswith(f"\n\n{context}"):
        return question[:-len(context) - 2], context
    return question, ""


def render_record(example: Example, fmt: str) -> dict[str, Any]:
    """One example in an export format's record shape."""
    if fmt == "messages":
        return {"messages": example.messages}
    if fmt == "alpaca":
        instruction, context = instruction_and_context(example)
        return {"instruction": instruction, "input": context, "output": example.answer}
    if fmt == "sharegpt":
        names = {"user": "human", "assistant": "gpt", "system": "system"}
        return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in example.messages]}
    if fmt == "jumpstart":
        instruction, context = instruction_and_context(example)
        return {"instruction": instruction, "context": context, "response": example.answer}
    if fmt == "csv":
        return {"id": example.id, "question": example.question, "answer": example.answer,
                "context": _context(example), "topic": example.meta.get("topic", "")}
    if fmt == "trl":
        return prompt_completion_rows(example.messages)
    raise UnderdogError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")


def _write(path: Path, records: list[dict[str, Any]], fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "question", "answer", "context", "topic"])
            writer.writeheader()
            writer.writerows(records)
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def export_dataset(project: Project, name: str, fmt: str = "messages", out: Path | str | None = None,
                   validation_split: float | None = None, seed: int | None = None) -> list[Path]:
    """Write dataset version `name` in format `fmt` with a seeded train/validation split; return the files."""
    if fmt not in FORMATS:
        raise UnderdogError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    cfg = project.config.data
    ratio = cfg.validation_split if validation_split is None else validation_split
    preference = load_manifest(project.root, name).kind == KIND
    if preference and fmt != "trl":
        raise UnderdogError(f"dataset {name!r} holds preference pairs: export it with --format trl "
                            "(prompt/chosen/rejected rows, TRL's preference format)")
    items = load_preferences(project.root, name) if preference else load_dataset(project.root, name)
    train, val = split(items, ratio, cfg.seed if seed is None else seed)
    out = Path(out) if out else project.root / "exports" / f"{name}-{fmt}"
    ext = "csv" if fmt == "csv" else "jsonl"
    parts = [("train", train, out / f"train.{ext}")]
    if val:
        folder = out / "validation" if fmt == "jumpstart" else out
        parts.append(("validation", val, folder / f"validation.{ext}"))
    paths = []
    for _, examples, path in parts:
        records = [to_trl(p) for p in examples] if preference else [render_record(e, fmt) for e in examples]
        if fmt == "trl" and not preference:
            records = [row for rows in records for row in rows]  # one row per assistant turn
        paths.append(_write(path, records, fmt))
        if fmt == "jumpstart":
            template = path.parent / "template.json"
            template.write_text(json.dumps(JUMPSTART_TEMPLATE))
            paths.append(template)
    return paths
