"""The autopilot: from `underdog.yaml` to the best honest run within budgets (docs/autopilot.md).

    from underdog.autopilot import Budgets, plan_autopilot, run_autopilot
    plan = plan_autopilot(project, Budgets(usd=20, max_runs=12))   # spends nothing
    outcome = run_autopilot(project, Budgets(usd=20, max_runs=12))
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {"Budgets": "plan", "Plan": "plan", "plan_autopilot": "run", "run_autopilot": "run", "Outcome": "run",
            "Journal": "journal", "decision_lines": "journal"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
