"""Prompt tuning: a grid of system prompts and temperatures judged on the eval set, and best-of-n sampling.

The public API:

    from underdog import tune
    result = tune.tune_prompt(project, "student", tune.load_prompts(Path("prompts.yaml")), [0.2, 0.7], [1.0])
    tune.write_report(result, project.report_dir("tune", "my-run")), tune.record_best(project, result)

Names are imported lazily (`underdog.lazy`): importing the package loads no model library.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {
    "Prompt": "prompt", "TuneResult": "prompt", "load_prompts": "prompt", "tune_prompt": "prompt",
    "best_of_n": "prompt", "record_best": "prompt", "write_report": "prompt",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
