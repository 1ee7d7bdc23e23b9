"""`/judges`: the leaderboard per judge configuration; `/judges/<id>`: one judging, question by question."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from underdog.studio import queries
from underdog.studio.context import studio_of

router = APIRouter()


@router.get("/judges")
def judges(request: Request, config: str = "", reference: str = "") -> Response:
    s = studio_of(request)
    return s.page(request, "judges.html", board=queries.judge_board(s.project, config, reference))


@router.get("/judges/{result_id}")
def judging(request: Request, result_id: int, only: str = "", page: int = 1) -> Response:
    s = studio_of(request)
    found = queries.judging(s.project, result_id, only, page)
    if found is None:
        return s.missing(request, f"no judging number {result_id}")
    return s.page(request, "judging.html", j=found, only=only, filters=queries.FILTERS)
