"""`underdog merge RUN`: the base model with a run's LoRA adapter merged in, as full weights for serving elsewhere
(vLLM, TGI, llama.cpp conversion, SageMaker endpoints).

    underdog merge <run-id>                  # -> runs/<run-id>/merged/ (safetensors + tokenizer + underdog_run.json)
    underdog merge <run-id> --dtype float32  # merge and save in fp32: the LoRA delta is not rounded to bf16

Precision: by default the base model is loaded in the dtype it was saved in (bf16 for most students) and the
LoRA delta (B @ A * alpha/r, computed in fp32) is added to the bf16 weights, i.e. rounded to bf16's 8-bit
mantissa. A small delta on a large weight can round away: the merged model then differs slightly from base +
adapter. `--dtype float32` merges and saves in fp32 (exact up to fp32, twice the size); serving engines cast it
to their own dtype when they load it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from underdog.errors import ConfigError, UnderdogError
from underdog.layout import ADAPTER_DIR, MERGED_DIR, RUN_COPY_FILE
from underdog.llm.local import quiet_transformers, resolve_model_path
from underdog.project import Project
from underdog.train.card import write_model_card
from underdog.train.runs import RunManifest, load_run

DTYPES = ("auto", "float32", "bfloat16", "float16")


def merge_run(project: Project, run_id: str, out: str | Path | None = None, dtype: str = "auto") -> Path:
    """Merge run `run_id`'s adapter into its base model and save it to `out`, in `dtype` (`auto`: the base
    model's saved dtype; `float32` keeps the LoRA delta unrounded), with a model card (README.md)."""
    target = Path(out) if out else project.run_dir(run_id) / MERGED_DIR
    _check_replaceable(target)
    merged, manifest = merged_model(project, run_id, dtype)
    with staged_folder(target) as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(run_adapter(project, run_id))).save_pretrained(tmp)
        (tmp / RUN_COPY_FILE).write_text(json.dumps(manifest.to_json(), indent=2))
        write_model_card(project, run_id, tmp, kind="merged")
    return target


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """An empty `<target>.tmp` to write into: it takes `target`'s place once the block ends (the folder there is
    kept until then); a failure or Ctrl-C in the block removes it and leaves `target` as it was."""
    tmp, old = target.with_name(target.name + ".tmp"), target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed run left
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _check_replaceable(target: Path) -> None:
    """Refuse an --out that is a file, or a folder holding files that are not an earlier merge's."""
    if target.is_file():
        raise ConfigError(f"--out {target}: a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / RUN_COPY_FILE).exists():
        raise ConfigError(f"--out {target}: holds files and no earlier merge ({RUN_COPY_FILE}); give an empty or "
                          "new folder")


def merged_model(project: Project, run_id: str, dtype: str = "auto") -> tuple[Any, RunManifest]:
    """Run `run_id`'s base model with its adapter merged in (in memory), and the run's manifest."""
    if dtype not in DTYPES:
        raise UnderdogError(f"merge dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    manifest = load_run(project.root, run_id)
    adapter = run_adapter(project, run_id)
    if manifest.status != "done" or not (adapter / "adapter_config.json").exists():
        raise UnderdogError(f"run {run_id} has no finished adapter (status {manifest.status})")
    with quiet_transformers():  # the library prints nothing: no loading bars, no peft deprecation notice
        model = AutoModelForCausalLM.from_pretrained(resolve_model_path(manifest.base_model), dtype=dtype)
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload(), manifest


def run_adapter(project: Project, run_id: str) -> Path:
    """The folder of run `run_id`'s adapter (and its tokenizer)."""
    return project.run_dir(run_id) / ADAPTER_DIR
