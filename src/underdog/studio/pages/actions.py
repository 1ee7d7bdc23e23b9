"""`/actions`: start `train`, `judge`, `tune-prompt` and `autopilot` from the page, follow them live, cancel them.

Each form becomes the `underdog` command a user would type (shown on the page), checked here first so that a
mistake is one line on the page rather than a failed process; the command itself then checks everything again and
takes the project's lock. A form field never becomes an option of its own: values are passed as `--name=value`
and hyperparameters must read `key=value`.
"""

from __future__ import annotations

import re
import shlex

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from underdog.data.dataset import list_datasets
from underdog.evaluate.evalset import list_evalsets
from underdog.studio import queries
from underdog.studio.context import Studio, studio_of
from underdog.studio.jobs import new_run_id
from underdog.studio.live import live
from underdog.train.runs import has_run

router = APIRouter()
HYPERPARAMETER = re.compile(r"^[A-Za-z_][\w.]*=\S+$")
NAME = re.compile(r"^[\w][\w.:/+-]*$")  # a judge, role or model name: never an option


class FormError(ValueError):
    """A field the command would refuse: one line for the page."""


@router.get("/actions")
def actions(request: Request) -> Response:
    s = studio_of(request)
    return s.page(request, "actions.html", actions=s.actions.list(), datasets=list_datasets(s.project.root)[::-1],
                  runs=queries.finished_runs(s.project),
                  evalsets=list_evalsets(s.project)[::-1])


@router.post("/actions/train")
def train(request: Request, dataset: str = Form(...), hyperparameters: str = Form(""),
          csrf: str = Form("")) -> Response:
    s = studio_of(request)
    return _start(request, s, csrf, lambda: train_argv(s, dataset, hyperparameters))


@router.post("/actions/judge")
def judge(request: Request, run: str = Form(...), judges: str = Form(""), evalset: str = Form(""),
          csrf: str = Form("")) -> Response:
    s = studio_of(request)
    return _start(request, s, csrf, lambda: (judge_argv(s, run, judges, evalset), None))


@router.post("/actions/tune-prompt")
def tune_prompt(request: Request, run: str = Form(...), temperatures: str = Form(""), top_ps: str = Form(""),
                csrf: str = Form("")) -> Response:
    s = studio_of(request)
    return _start(request, s, csrf, lambda: (tune_argv(s, run, temperatures, top_ps), None))


@router.post("/actions/autopilot")
def autopilot(request: Request, budget_usd: str = Form(""), max_runs: str = Form(""), train_hours: str = Form(""),
              csrf: str = Form("")) -> Response:
    s = studio_of(request)
    return _start(request, s, csrf, lambda: (autopilot_argv(budget_usd, max_runs, train_hours), None))


@router.get("/actions/{action_id}")
def action(request: Request, action_id: str) -> Response:
    s = studio_of(request)
    found = s.actions.get(action_id)
    if found is None:
        return s.missing(request, f"no action {action_id!r}")
    return s.page(request, "action.html", action=found, panel=action_panel(s, action_id))


@router.get("/actions/{action_id}/live")
def action_live(request: Request, action_id: str) -> Response:
    s = studio_of(request)
    return live(request, lambda: _version(s, action_id), lambda: action_panel(s, action_id))


@router.post("/actions/{action_id}/cancel")
def cancel(request: Request, action_id: str, csrf: str = Form("")) -> Response:
    s = studio_of(request)
    if refused := s.refusal(request, csrf):
        return refused
    if s.actions.cancel(action_id) is None:
        return s.missing(request, f"no action {action_id!r}")
    return RedirectResponse(f"/actions/{action_id}", status_code=303)


def action_panel(s: Studio, action_id: str) -> str:
    """The action's status, the model calls made since it started (its progress, while a progress bar waits for
    its task to end to be printed) and what it printed."""
    found = s.actions.get(action_id)
    calls = s.project.store.spend(since=found.started) if found else []
    return s.fragment("action_panel.html", action=found, calls=calls, log=s.actions.log(action_id))


def _version(s: Studio, action_id: str) -> tuple[object, ...]:
    found = s.actions.get(action_id)
    calls = sum(r["calls"] for r in s.project.store.spend(since=found.started)) if found else 0
    return s.actions.log_size(action_id), found.status if found else "missing", calls


def _start(request: Request, s: Studio, csrf: str, build) -> Response:  # type: ignore[no-untyped-def]
    """Check who asks, the form and the lock, then start the command and show its page."""
    if refused := s.refusal(request, csrf):
        return refused
    try:
        argv, run_id = build()
    except FormError as exc:
        return s.page(request, "message.html", status=400, heading="Not started", text=str(exc))
    if holder := queries.lock_holder(s.project):
        return s.page(request, "message.html", status=409, heading="The project is busy",
                      text=f"{holder} is writing to this project; wait for it to finish (or cancel it) and start "
                           "this again.")
    started = s.actions.start(argv, run_id)
    return RedirectResponse(f"/actions/{started.id}", status_code=303)


# -- the commands ------------------------------------------------------------------------------------------------
def train_argv(s: Studio, dataset: str, hyperparameters: str) -> tuple[list[str], str]:
    """`train --dataset=D --run-id=ID key=value ...` and the run id it will make."""
    if dataset not in list_datasets(s.project.root):
        raise FormError(f"no dataset version named {dataset!r}")
    try:
        pairs = shlex.split(hyperparameters)
    except ValueError as exc:
        raise FormError(f"hyperparameters: {exc}") from None
    wrong = [p for p in pairs if not HYPERPARAMETER.match(p)]
    if wrong:
        raise FormError(f"hyperparameters: {wrong[0]!r} is not key=value (e.g. epoch=3 lora_r=8)")
    run_id = new_run_id(dataset)
    return ["train", f"--dataset={dataset}", f"--run-id={run_id}", *pairs], run_id


def judge_argv(s: Studio, run: str, judges: str, evalset: str) -> list[str]:
    """`judge RUN [--judge=J ...] [--evalset=E]`."""
    argv = ["judge", _candidate(s, run), "--quiet"]
    for name in judges.replace(",", " ").split():
        if not NAME.match(name):
            raise FormError(f"judges: {name!r} is not a judge name (a role, provider:model, facts, similarity)")
        argv.append(f"--judge={name}")
    if evalset:
        if evalset not in list_evalsets(s.project):
            raise FormError(f"no eval set named {evalset!r}")
        argv.append(f"--evalset={evalset}")
    return argv


def tune_argv(s: Studio, run: str, temperatures: str, top_ps: str) -> list[str]:
    """`tune-prompt RUN [--temperature=T ...] [--top-p=P ...]` (prompts from tune.prompts)."""
    argv = ["tune-prompt", _candidate(s, run)]
    for option, text in (("--temperature", temperatures), ("--top-p", top_ps)):
        argv += [f"{option}={value:g}" for value in _numbers(option.strip("-"), text)]
    return argv


def autopilot_argv(budget_usd: str, max_runs: str, train_hours: str) -> list[str]:
    """`autopilot [--budget-usd=X] [--max-runs=N] [--train-hours=H]`."""
    argv = ["autopilot"]
    for option, text, kind in (("--budget-usd", budget_usd, float), ("--max-runs", max_runs, int),
                               ("--train-hours", train_hours, float)):
        if text.strip():
            try:
                argv.append(f"{option}={kind(text.strip())}")
            except ValueError:
                raise FormError(f"{option.strip('-')}: {text.strip()!r} is not a number") from None
    return argv


def _candidate(s: Studio, run: str) -> str:
    if not (has_run(s.project, run) or run in s.project.config.models) or not NAME.match(run):
        raise FormError(f"no run or role named {run!r}")
    return run


def _numbers(name: str, text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise FormError(f"{name}: {text!r} is not a list of numbers") from None
