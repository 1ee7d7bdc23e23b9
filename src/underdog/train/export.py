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

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer

from underdog.arena.prepare import load_settings
from underdog.errors import ConfigError
from underdog.llm.local import resolve_model_path
from underdog.project import Project
from underdog.train.card import write_model_card
from underdog.train.gguf_file import check_exportable, write_gguf
from underdog.train.merge import merged_model, run_adapter
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
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    merged, _ = merged_model(project, run_id, dtype="float32")
    name = f"{run_id}-{quant}.gguf"
    size = write_gguf(merged, run_adapter(project, run_id), tmp / name, quant, name=run_id)
    result = Export(target, target / name, size, target / "README.md", settings=best)
    if fmt == "ollama":
        result.modelfile, result.notes = target / MODELFILE, _write_modelfile(project, run_id, tmp, name, tuned)
    write_model_card(project, run_id, tmp, kind="gguf", export=_card_lines(result, quant))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return result


def _write_modelfile(project: Project, run_id: str, folder: Path, gguf_name: str, tuned: dict[str, Any]) -> list[str]:
    template = AutoTokenizer.from_pretrained(str(run_adapter(project, run_id))).chat_template
    text, notes = modelfile(gguf_name, template, tuned)
    (folder / MODELFILE).write_text(text)
    if not tuned:
        notes.append(f"no tune-prompt settings for {run_id}: the Modelfile sets no system prompt, temperature or "
                     f"top_p (`underdog tune-prompt {run_id}`, or --settings best.yaml)")
    return notes


def _card_lines(result: Export, quant: str) -> list[str]:
    lines = [f"- `{result.gguf.name}`: {quant}, {result.size / 2**20:.1f} MiB, written with {CONVERTER}; the LoRA "
             "adapter was merged in fp32 first."]
    if result.modelfile:
        source = f" (system prompt, temperature and top_p from `{result.settings}`)" if result.settings else ""
        lines.append(f"- `{MODELFILE}` for Ollama{source}: `ollama create {result.gguf.stem} -f {MODELFILE}`.")
    return lines
