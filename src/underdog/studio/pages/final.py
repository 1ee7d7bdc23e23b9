"""`/final`: tune-prompt heatmaps, the arena's votes and standings (style-controlled, what the voters reward),
the judges checked against the people (`underdog calibrate`, the `people` judge); `/autopilot`: its plan against
its spend, its rungs and its decision log, live while it runs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from underdog.studio import charts, queries
from underdog.studio.context import Studio, studio_of
from underdog.studio.live import live

router = APIRouter()


@router.get("/final")
def final(request: Request) -> Response:
    s = studio_of(request)
    grids = queries.tune_grids(s.project)
    maps = [(g, charts.heatmap(g.prompts, [f"T={t}\ntop_p={p}" for t, p in g.params], g.win_rates()))
            for g in grids]
    table = queries.arena_standings(s.project)
    return s.page(request, "final.html", maps=maps, standings=table, sources=queries.vote_sources(s.project),
                  rewards=queries.rewards_text(table) if table else [], check=queries.jury_check(s.project))


@router.get("/autopilot")
def autopilot(request: Request) -> Response:
    s = studio_of(request)
    return s.page(request, "autopilot.html", panel=autopilot_panel(s))


@router.get("/autopilot/live")
def autopilot_live(request: Request) -> Response:
    s = studio_of(request)
    return live(request, lambda: queries.autopilot_version(s.project), lambda: autopilot_panel(s))


def autopilot_panel(s: Studio) -> str:
    return s.fragment("autopilot_panel.html", a=queries.autopilot(s.project))
