"""`underdog export-model RUN`: a run's merged model as GGUF for llama.cpp / LM Studio, or for Ollama with a
Modelfile, in a folder with its model card (README.md), ready to publish (`--push`, train/push.py).

    underdog export-model <run-id>                          # -> runs/<id>/export-q8_0/{<id>-q8_0.gguf, README.md}
    underdog export-model <run-id> --format ollama --quant f16   # + Modelfile (template, tuned prompt and params)

    result = export_model(project, "my-run", "ollama", "q8_0")     # -> Export

The adapter is merged in fp32 (no rounding of the LoRA delta before quantization), then written by
`gguf_file.write_gguf`. The Modelfile's system prompt, temperature and top_p come from `--settings` (a
`tune-prompt` best.yaml), else from the newest best.yaml that `underdog tune-prompt RUN` wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer

from underdog.arena.prepare import load_settings
from underdog.errors import ConfigError
from underdog.llm.local import resolve_model_path
from underdog.project import Project
from underdog.train.card import CARD_FILE, write_model_card
from underdog.train.gguf_file import check_exportable, write_gguf
from underdog.train.merge import merged_model, run_adapter, staged_folder
from underdog.train.modelfile import modelfile
from underdog.train.runs import load_run
from underdog.tune.prompt import latest_best

FORMATS = ("gguf", "ollama")
MODELFILE = "Modelfile"
CONVERTER = "the `gguf` package's writer (llama.cpp's gguf-py), through underdog's train/gguf_file.py"


@dataclass
class Export:
    folder: Path
    gguf: Path
    size: int  # bytes of the GGUF file
    card: Path
    modelfile: Path | None = None
    settings: Path | None = None  # the best.yaml the Modelfile carries
    notes: list[str] = field(default_factory=list)


def export_model(project: Project, run_id: str, fmt: str = "gguf", quant: str = "q8_0", out: Path | None = None,
                 settings: Path | None = None) -> Export:
    """Write run `run_id`'s merged model as `<run>-<quant>.gguf` (+ a Modelfile for `ollama`) and its model card
    into `out` (default runs/<id>/export-<quant>), replacing what was there only once all is written."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    run = load_run(project.root, run_id)
    check_exportable(AutoConfig.from_pretrained(resolve_model_path(run.base_model)), quant)  # before the merge
    best = settings or (latest_best(project, run_id) if fmt == "ollama" else None)
    tuned = load_settings(best) if best else {}
    target = Path(out) if out else project.run_dir(run_id) / f"export-{quant}"
    _check_replaceable(target)
    with staged_folder(target) as tmp:  # a failed export leaves nothing half-written, and the previous one as it was
        result = _write_export(project, run_id, fmt, quant, tmp, tuned)
        result.settings = best
        write_model_card(project, run_id, tmp, kind="gguf", export=_card_lines(project, result, quant))
    return replace(result, folder=target, gguf=target / result.gguf.name, card=target / result.card.name,
                   modelfile=result.modelfile and target / result.modelfile.name)


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that holds anything an export does not write (an --out pointing elsewhere)."""
    if target.is_file():
        raise ConfigError(f"--out {target}: a file, not a folder")
    foreign = sorted(p.name for p in target.iterdir()
                     if not (p.is_file() and (p.suffix == ".gguf" or p.name in (CARD_FILE, MODELFILE)))) \
        if target.is_dir() else []
    if foreign:
        raise ConfigError(f"--out {target}: holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}, "
                          "which an export does not write; give an empty or new folder")


def _write_export(project: Project, run_id: str, fmt: str, quant: str, folder: Path,
                  tuned: dict[str, Any]) -> Export:
    """The GGUF (and for `ollama` the Modelfile) of run `run_id` in `folder`."""
    name = f"{run_id}-{quant}.gguf"
    result = Export(folder, folder / name, 0, folder / CARD_FILE)
    if fmt == "ollama":  # first: what the settings cannot carry is said before the merge
        result.modelfile, result.notes = folder / MODELFILE, _write_modelfile(project, run_id, folder, name, tuned)
    merged, _ = merged_model(project, run_id, dtype="float32")
    result.size = write_gguf(merged, run_adapter(project, run_id), folder / name, quant, name=run_id)
    return result


def _write_modelfile(project: Project, run_id: str, folder: Path, gguf_name: str, tuned: dict[str, Any]) -> list[str]:
    template = AutoTokenizer.from_pretrained(str(run_adapter(project, run_id))).chat_template
    text, notes = modelfile(gguf_name, template, tuned)
    (folder / MODELFILE).write_text(text)
    if not tuned:
        notes.append(f"no tune-prompt settings for {run_id}: the Modelfile sets no system prompt, temperature or "
                     f"top_p (`underdog tune-prompt {run_id}`, or --settings best.yaml)")
    return notes


def _card_lines(project: Project, result: Export, quant: str) -> list[str]:
    lines = [f"- `{result.gguf.name}`: {quant}, {result.size / 2**20:.1f} MiB, written with {CONVERTER}; the LoRA "
             "adapter was merged in fp32 first."]
    if result.modelfile:
        settings = result.settings and (result.settings.resolve().relative_to(project.root.resolve())
                                        if result.settings.resolve().is_relative_to(project.root.resolve())
                                        else result.settings.name)
        source = f" (system prompt, temperature and top_p from `{settings}`)" if settings else ""
        lines.append(f"- `{MODELFILE}` for Ollama{source}: `ollama create {result.gguf.stem} -f {MODELFILE}`.")
    return lines
