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
from pathlib import Path

from underdog.errors import UnderdogError
from underdog.layout import ADAPTER_DIR, MERGED_DIR, RUN_COPY_FILE
from underdog.project import Project
from underdog.train.runs import load_run

DTYPES = ("auto", "float32", "bfloat16", "float16")


def merge_run(project: Project, run_id: str, out: str | Path | None = None, dtype: str = "auto") -> Path:
    """Merge run `run_id`'s adapter into its base model and save it to `out`, in `dtype` (`auto`: the base
    model's saved dtype; `float32` keeps the LoRA delta unrounded)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from underdog.llm.local import resolve_model_path

    if dtype not in DTYPES:
        raise UnderdogError(f"merge dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    manifest = load_run(project.root, run_id)
    adapter = project.run_dir(run_id) / ADAPTER_DIR
    if manifest.status != "done" or not (adapter / "adapter_config.json").exists():
        raise UnderdogError(f"run {run_id} has no finished adapter (status {manifest.status})")
    target = Path(out) if out else project.run_dir(run_id) / MERGED_DIR
    base = resolve_model_path(manifest.base_model)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(tmp)
    (tmp / RUN_COPY_FILE).write_text(json.dumps(manifest.to_json(), indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
