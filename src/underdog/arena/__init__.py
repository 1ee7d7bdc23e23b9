"""The human arena: blind A/B votes on candidates' answers, invite codes, standings blended with the LLM jury.

The public API:

    from underdog import arena
    arena.add_candidate(project, "runs/<id>", name="fine-tuned")   # answers the eval set, puts them on show
    arena.judge_arena(project)                                     # the LLM jury's verdict on every pair
    arena.create_invites(project.store, 20)                        # single-voter invite codes
    app = arena.create_app(project.store, token)                   # the FastAPI voting site (`underdog arena serve`)
    arena.export_votes(project.store, Path("votes.csv")), arena.report_sections(project)
    arena.import_votes(project, Path("form.csv"))                  # votes collected elsewhere (checked, idempotent)
    arena.cast_simulated_votes(project, voters=5, noise=0.1)      # the SIMULATED panel (offline demo, tests)
    arena.build_preferences(project, "prefs", votes=True)          # a preference dataset version from the votes

`standings` lives in a module of the same name: `from underdog.arena.standings import standings`. The tables are
in `store.py`. Names are imported lazily (`underdog.lazy`): importing the package loads no web framework.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {
    "add_candidate": "prepare", "judge_arena": "prepare", "load_settings": "prepare",
    "add_items": "votes", "candidates": "votes", "create_invites": "votes", "export_votes": "votes",
    "VoteRefused": "votes",
    "Standings": "standings", "to_markdown": "standings", "to_html": "standings", "report_sections": "standings",
    "create_app": "app", "judge_key": "app",
    "import_votes": "importing", "ImportResult": "importing",
    "cast_simulated_votes": "simulated_panel", "Panel": "simulated_panel",
    "build_preferences": "preferences", "pairs_from_votes": "preferences",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
