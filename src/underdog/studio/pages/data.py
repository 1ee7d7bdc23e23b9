"""`/data`, `/data/<version>`, `/data/<version>/curation`, `/evalsets`, `/evalsets/<name>`: the data and its
lineage, examples paged and searched, curation's decision on every example, the held-out questions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from underdog.data.dataset import list_datasets
from underdog.evaluate.evalset import list_evalsets
from underdog.studio import charts, queries
from underdog.studio.context import studio_of

router = APIRouter()


@router.get("/data")
def datasets(request: Request) -> Response:
    s = studio_of(request)
    nodes = queries.lineage(s.project)
    graph = charts.lineage_graph([(n.name, n.parents, f"{n.count:,}{' pairs' if n.kind == 'preference' else ''} · "
                                   f"{n.recipe}") for n in nodes])
    return s.page(request, "data.html", nodes=nodes[::-1], graph=graph)


@router.get("/data/{name}")
def dataset(request: Request, name: str, q: str = "", page: int = 1) -> Response:
    s = studio_of(request)
    if name not in list_datasets(s.project.root):
        return s.missing(request, f"no dataset version named {name!r}")
    node = next(n for n in queries.lineage(s.project) if n.name == name)
    return s.page(request, "dataset.html", node=node, q=q, examples=queries.examples(s.project, name, q, page))


@router.get("/data/{name}/curation")
def curation(request: Request, name: str, decision: str = "", q: str = "", page: int = 1) -> Response:
    s = studio_of(request)
    found = queries.curation(s.project, name, decision, q, page) if name in list_datasets(s.project.root) else None
    if found is None:
        return s.missing(request, f"{name!r} is not a curated dataset version")
    return s.page(request, "curation.html", name=name, curation=found, decision=decision, q=q)


@router.get("/evalsets")
def evalsets(request: Request) -> Response:
    s = studio_of(request)
    return s.page(request, "evalsets.html", sets=queries.evalsets(s.project))


@router.get("/evalsets/{name}")
def evalset(request: Request, name: str, show: str = "", page: int = 1) -> Response:
    s = studio_of(request)
    if name not in list_evalsets(s.project):
        return s.missing(request, f"no eval set named {name!r}")
    info = queries.evalset(s.project, name)
    shown = [q for q in info.questions if show != "facts" or q.facts]
    shown = [q for q in shown if show != "probes" or q.expect == "refusal"]
    return s.page(request, "evalset.html", info=info, show=show, questions=queries.paged(shown, page))
