"""`/`: each stage's state, the spend against the budgets, the recommended run and the next command."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from underdog.evaluate.leaderboard import recommend
from underdog.studio import queries
from underdog.studio.context import studio_of

router = APIRouter()


@router.get("/")
def overview(request: Request) -> Response:
    s = studio_of(request)
    states = queries.stage_states(s.project)
    entries = queries.judge_board(s.project).entries
    return s.page(request, "overview.html", states=states, spend=queries.spend(s.project),
                  best=recommend(entries), next_step=queries.next_step(s.project, states, entries),
                  running=s.actions.running())
