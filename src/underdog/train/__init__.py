"""Training: LoRA SFT runs, overfitting diagnosis, merging and export, sweeps and their executors.

The public API (every function takes a `Project` first; the run functions also take its folder):

    from underdog.train import train, list_runs, load_run, run_sweep, merge_run
    manifest = train(project, "v1", ["epoch=3", "lora_r=16"])   # -> RunManifest; run_id= resumes one
    list_runs(project), load_run(project, manifest.id)           # -> [RunManifest], RunManifest
    run_sweep(project, "sweep.yaml")                             # -> [RunManifest], resumable
    merge_run(project, manifest.id)                              # -> Path of the merged weights (+ model card)
    export_model(project, manifest.id, "ollama", "q8_0")         # -> Export: GGUF, Modelfile, model card
    write_model_card(project, manifest.id, folder)               # -> folder/README.md (Hugging Face model card)
    push_folder(folder, "me/my-model")                           # -> commit URL (token from $HF_TOKEN)

`train` lives in `lora.py` (`from underdog.train.lora import train` is the explicit form). The tables are in
`store.py`. Names are imported lazily (`underdog.lazy`): importing the package loads no model library.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {
    "train": "lora", "RunManifest": "runs", "list_runs": "runs", "load_run": "runs", "run_sweep": "sweep",
    "merge_run": "merge", "export_model": "export", "write_model_card": "card", "push_folder": "push",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
