"""`underdog ingest PATH...`: documents -> chunks -> grounded Q&A pairs that keep their source context.

    manifest = ingest(project, ["handbook.pdf", "faq/"], name="docs")
    text = read_document(Path("page.html"));  chunks = chunk_text(text, size=2000, overlap=200)

Readers: PDF (pypdf), HTML (BeautifulSoup), DOCX (python-docx), CSV (csv: one "column: value" line per row),
Markdown and TXT (as is). Folders are walked. A corrupt or unsupported file is reported by name with the reason
(`manifest.counts["skipped"]`) and skipped; the others go on. Each chunk gets one teacher call asking for
`pairs_per_chunk` pairs grounded in the passage (JSON, else "Q:/A:" lines); a chunk that yields none gets one
question call and one grounded answer call instead. Every example keeps `meta.context` (the chunk) and its file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from underdog.data.dataset import Example, Manifest, save_dataset
from underdog.data.jobs import Checkpoint, check_new_name, fingerprint, provenance, run_checkpointed
from underdog.data.parse import first_question, parse_qa_pairs
from underdog.data.prompts import PROMPT_VERSION, render
from underdog.errors import UnderdogError
from underdog.llm import LLM
from underdog.llm.base import Reply
from underdog.project import Project
from underdog.textfile import UTF8, NotText, codec_name, csv_records, strict_decode

SUFFIXES = {".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".docx", ".csv"}


def read_document(path: Path, encoding: str = UTF8) -> str:
    """The plain text of one supported file (text formats in `encoding`); raises ValueError naming the problem."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unsupported file type {suffix or '(none)'} (supported: {', '.join(sorted(SUFFIXES))})")
    if suffix == ".pdf":
        from pypdf import PdfReader

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # a corrupt file is reported once, by us
        return "\n\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    if suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        cells = [" | ".join(c.text for c in row.cells) for t in document.tables for row in t.rows]
        return "\n\n".join([p.text for p in document.paragraphs if p.text.strip()] + cells)
    text = strict_decode(path.read_bytes(), codec_name(encoding))
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "nav", "footer", "noscript"]):
            tag.decompose()
        return "\n".join(line.strip() for line in soup.get_text("\n").splitlines() if line.strip())
    if suffix == ".csv":
        rows = [row for _, row in csv_records(text)]
        return "\n".join("; ".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in rows)
    return text


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Chunks of at most `size` characters overlapping by about `overlap`, cut at whitespace where possible."""
    text = text.strip()
    overlap = min(overlap, size // 2)
    chunks, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind("\n\n", start, end), text.rfind(". ", start, end), text.rfind(" ", start, end))
            end = cut + 1 if cut > start + size // 2 else end
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        while 0 < start < len(text) and not text[start - 1].isspace() and start < end:
            start += 1  # begin the next chunk at a word boundary
    return [c for c in chunks if c]


def collect_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


def ingest(project: Project, paths: list[Path | str], name: str = "ingested", chunk_size: int | None = None,
           overlap: int | None = None, pairs_per_chunk: int | None = None, teacher: str = "teacher",
           allow_failures: bool = False, encoding: str = UTF8) -> Manifest:
    """Read documents (text formats in `encoding`), chunk them, and ask the teacher for grounded Q&A pairs."""
    cfg = project.config.data
    size, overlap = chunk_size or cfg.chunk_size, cfg.chunk_overlap if overlap is None else overlap
    n = pairs_per_chunk or cfg.pairs_per_chunk
    check_new_name(project.root, name)
    chunks, skipped = read_chunks([Path(p) for p in paths], size, overlap, codec_name(encoding))
    if not chunks:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped) or "no files given"
        raise UnderdogError(f"nothing to ingest ({reasons})")
    llm = project.llm(teacher, stage="ingest")
    recipe = {"command": "ingest", "teacher": llm.name, "prompt_version": PROMPT_VERSION, "chunk_size": size,
              "overlap": overlap, "pairs_per_chunk": n, "files": sorted({c[0] for c in chunks})}
    checkpoint = Checkpoint(project.store, f"ingest:{name}:{fingerprint([recipe, chunks])}")
    prompts = {f"{file}#{i}": render("chunk_qa", source=Path(file).name, chunk=text, n=n)
               for i, (file, text) in enumerate(chunks)}
    results = run_checkpointed(llm, prompts, checkpoint, "chunks", _handle_chunk)
    _fill_empty_chunks(llm, chunks, results, checkpoint)
    examples = []
    for (file, text), result in zip(chunks, results.values(), strict=True):
        for question, answer in result["pairs"]:
            meta = provenance(llm, "ingest", file=file, context=text, created=result["created"])
            examples.append(Example([{"role": "user", "content": question},
                                     {"role": "assistant", "content": answer}], meta))
    counts = {"files": len(recipe["files"]), "chunks": len(chunks), "skipped": skipped,
              "malformed_pairs": sum(r["malformed"] for r in results.values()),
              "single_pair_fallbacks": sum(bool(r.get("fallback")) for r in results.values()),
              "failed_calls": len(checkpoint.failures), "examples": len(examples)}
    checkpoint.raise_if_failed(allow_failures)
    if not examples:
        raise UnderdogError(f"the teacher produced no usable Q&A pairs ({counts}); finished calls are cached")
    manifest = save_dataset(project.root, name, examples, recipe=recipe, counts=counts)
    checkpoint.clear()
    return manifest


def _fill_empty_chunks(llm: LLM, chunks: list[tuple[str, str]], results: dict[str, Any],
                       checkpoint: Checkpoint) -> None:
    """A chunk whose pairs reply gave nothing usable gets one question call and one grounded answer call
    (two short tasks a small teacher can do)."""
    keys = [k for k, r in results.items() if not r["pairs"] and not r["error"]]
    texts = dict(zip(results, chunks, strict=True))
    asked = run_checkpointed(llm, {f"q1:{k}": render("chunk_question", source=Path(texts[k][0]).name,
                                                     chunk=texts[k][1]) for k in keys},
                             checkpoint, "chunk questions", lambda key, reply: first_question(reply.text))
    questions = {k: asked[f"q1:{k}"] for k in keys if asked[f"q1:{k}"]}
    answered = run_checkpointed(llm, {f"a1:{k}": render("chunk_answer", source=Path(texts[k][0]).name,
                                                        chunk=texts[k][1], question=q) for k, q in questions.items()},
                                checkpoint, "chunk answers", lambda key, reply: reply.text.strip())
    for k, question in questions.items():
        if answer := answered[f"a1:{k}"]:
            results[k] = {**results[k], "pairs": [(question, answer)], "fallback": True}


def read_chunks(paths: list[Path], size: int, overlap: int,
                encoding: str = UTF8) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """(file, chunk) pairs of every readable document under `paths`, and the skipped files with their reason."""
    chunks, skipped = [], []
    for file in collect_files(paths):
        try:
            if not file.exists():
                raise ValueError("not found")
            text = read_document(file, encoding)
            if not text.strip():
                raise ValueError("no text found")
        except Exception as exc:  # noqa: BLE001 - any reader failure skips just this file
            reason = str(exc) if type(exc) is ValueError or isinstance(exc, NotText) else f"{type(exc).__name__}: {exc}"
            skipped.append({"file": str(file), "reason": reason[:200]})
            continue
        chunks.extend((str(file), chunk) for chunk in chunk_text(text, size, overlap))
    return chunks, skipped


def _handle_chunk(key: str, reply: Reply) -> dict[str, Any]:
    pairs, malformed = parse_qa_pairs(reply.text) if not reply.error else ([], 0)
    return {"pairs": pairs, "malformed": malformed, "error": reply.error, "created": round(time.time(), 3)}
