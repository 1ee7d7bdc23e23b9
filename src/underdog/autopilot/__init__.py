"""The autopilot: from `underdog.yaml` to the best honest run within budgets (docs/autopilot.md).

    from underdog.autopilot import Budgets, plan_autopilot, run_autopilot
    plan = plan_autopilot(project, Budgets(usd=20, max_runs=12))   # spends nothing
    outcome = run_autopilot(project, Budgets(usd=20, max_runs=12))

Modules: names (what it creates), base (budgets, settings, estimates, plan, outcome), context (the Stage protocol,
the Context stages see, the Budget they spend from), stages (the table), one module per stage (sources,
evalsets, variants, search + halving + judging, tuning, holdout, bundle), plan (estimates, cuts, the fixed plan),
run (the runner), journal (decisions and events).
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {"Budgets": "base", "Options": "base", "Plan": "base", "Outcome": "base", "plan_autopilot": "plan",
            "run_autopilot": "run", "Autopilot": "run", "STAGES": "stages", "Journal": "journal",
            "decision_lines": "journal"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
