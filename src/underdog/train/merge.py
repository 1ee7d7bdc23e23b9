"""`underdog merge RUN`: the base model with a run's LoRA adapter merged in, as full weights for serving elsewhere
(vLLM, TGI, llama.cpp conversion, SageMaker endpoints).

    underdog merge <run-id>            # -> runs/<run-id>/merged/ (safetensors + tokenizer + underdog_run.json)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from underdog.errors import UnderdogError
from underdog.project import Project
from underdog.train.runs import load_run, run_dir


def merge_run(project: Project, run_id: str, out: str | Path | None = None) -> Path:
    """Merge run `run_id`'s adapter into its base model and save it (in the base model's saved dtype) to `out`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from underdog.llm.local import resolve_model_path

    manifest = load_run(project.root, run_id)
    adapter = run_dir(project.root, run_id) / "adapter"
    if manifest.status != "done" or not (adapter / "adapter_config.json").exists():
        raise UnderdogError(f"run {run_id} has no finished adapter (status {manifest.status})")
    target = Path(out) if out else run_dir(project.root, run_id) / "merged"
    base = resolve_model_path(manifest.base_model)
    model = AutoModelForCausalLM.from_pretrained(base)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(tmp)
    (tmp / "underdog_run.json").write_text(json.dumps(manifest.to_json(), indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
