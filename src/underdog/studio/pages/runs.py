"""`/runs` (sortable, filterable), `/runs/<id>` with its loss curves live while it trains, `/runs/compare`."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from underdog.studio import charts, queries
from underdog.studio.context import Studio, studio_of
from underdog.studio.live import live

router = APIRouter()


@router.get("/runs")
def runs(request: Request, sort: str = "created", dir: str = "desc", q: str = "", status: str = "") -> Response:
    s = studio_of(request)
    board = queries.judge_board(s.project)
    rows = queries.run_rows(s.project, board, sort, dir != "asc", q, status)
    return s.page(request, "runs.html", rows=rows, board=board, sort=sort, dir=dir, q=q, only_status=status,
                  columns=queries.RUN_COLUMNS)


@router.get("/runs/compare")
def compare(request: Request, id: list[str] = Query([])) -> Response:  # noqa: A002 - the form field's name
    s = studio_of(request)
    found = [m for m in (queries.run(s.project, run_id) for run_id in dict.fromkeys(id)) if m]
    series = []
    for i, m in enumerate(found):
        curve = queries.curve(s.project, m.id)
        series += [charts.Series(f"{m.id} train", curve["train"], charts.colour(i)),
                   charts.Series(f"{m.id} eval", curve["eval"], charts.colour(i), dashed=True, markers=True)]
    judged = {m.id: (queries.run_judgings(s.project, m.id) or [None])[0] for m in found}
    return s.page(request, "compare.html", runs=found, chart=charts.line_chart(series), judged=judged,
                  colours=[charts.colour(i) for i in range(len(found))])


@router.get("/runs/{run_id}")
def run(request: Request, run_id: str) -> Response:
    s = studio_of(request)
    manifest = queries.run(s.project, run_id)
    if manifest is None and not s.actions.making(run_id):
        return s.missing(request, f"no run named {run_id!r}")
    return s.page(request, "run.html", run_id=run_id, run=manifest, panel=curve_panel(s, run_id),
                  judgings=queries.run_judgings(s.project, run_id))


@router.get("/runs/{run_id}/live")
def run_live(request: Request, run_id: str) -> Response:
    s = studio_of(request)
    return live(request, lambda: queries.curve_version(s.project, run_id), lambda: curve_panel(s, run_id))


def curve_panel(s: Studio, run_id: str) -> str:
    """The run's status line and its train / eval loss chart, as stored right now."""
    manifest = queries.run(s.project, run_id)
    curve = queries.curve(s.project, run_id)
    chart = charts.line_chart([charts.Series("train loss", curve["train"], charts.colour(0)),
                               charts.Series("eval loss", curve["eval"], charts.colour(1), dashed=True,
                                             markers=True)])
    rewards = queries.rewards(s.project, run_id)
    reward_charts = [(title, charts.line_chart([
        charts.Series(f"train {title}", rewards[name]["train"], charts.colour(0)),
        charts.Series(f"eval {title}", rewards[name]["eval"], charts.colour(1), dashed=True, markers=True)],
        width=480, height=240, y_label=title)) for name, title in (("margin", "reward margin"),
                                                                 ("accuracy", "reward accuracy"))
        if any(rewards[name].values())]
    return s.fragment("run_curve.html", run=manifest, chart=chart, curve=curve, reward_charts=reward_charts)
