"""What every page handler of the studio shares: the project, its actions, the templates, and who may act.

Reading needs nothing. Acting (starting or cancelling a command) needs the token printed at start, as the arena's
organiser page does (underdog/web.py): opening any page with `?token=` gives this browser a session cookie (an
HMAC of the token; HttpOnly, SameSite=Strict) and drops the token from the address; each form carries a CSRF field
(another HMAC of the token), checked with the Origin header on every POST. Scripts may instead send
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from underdog.evaluate.judges.facts import is_regex
from underdog.project import Project
from underdog.studio import queries
from underdog.studio.jobs import Actions
from underdog.web import derived_key, given_token, same_origin

HERE = Path(__file__).parent
COOKIE = "underdog_studio"


@dataclass
class Studio:
    """What every page handler needs: the project, its actions, the templates and the token."""

    project: Project
    token: str
    templates: Jinja2Templates
    actions: Actions

    @property
    def session(self) -> str:
        return derived_key(self.token, "underdog-studio-session", 32)

    @property
    def csrf(self) -> str:
        return derived_key(self.token, "underdog-studio-csrf", 32)

    def is_actor(self, request: Request) -> bool:
        """Whether the request may act: the session cookie, or the token itself (a script's Bearer header)."""
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session.encode()) or hmac.compare_digest(
            given_token(request).encode(), self.token.encode())

    def refusal(self, request: Request, csrf: str) -> Response | None:
        """None when a POST may act; else the 403 page saying why."""
        if request.headers.get("authorization", "").startswith("Bearer "):
            ok = hmac.compare_digest(given_token(request).encode(), self.token.encode())
        else:
            ok = (self.is_actor(request) and hmac.compare_digest(csrf.encode(), self.csrf.encode())
                  and same_origin(request))
        if ok:
            return None
        return self.page(request, "message.html", status=403, heading="Not allowed",
                         text="Acting needs the token printed when the studio started: open the link with "
                              "?token= once in this browser, then use the page's own buttons.")

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """The page `template`; a visit with the right `?token=` first sets the session cookie and drops the token
        from the address."""
        if "token" in request.query_params and hmac.compare_digest(
                request.query_params["token"].encode(), self.token.encode()):
            query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(COOKIE, self.session, httponly=True, samesite="strict")
            return response
        actor = self.is_actor(request)
        return self.templates.TemplateResponse(request, template, {
            "actor": actor, "csrf": self.csrf if actor else "", "holder": queries.lock_holder(self.project),
            "path": request.url.path, **context}, status_code=status)

    def missing(self, request: Request, what: str) -> Response:
        return self.page(request, "message.html", status=404, heading="Not found", text=what)

    def fragment(self, name: str, **context: Any) -> str:
        """A template rendered alone, for a live panel."""
        return self.templates.get_template(name).render(**context)


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


def templates_for(project: Project) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False  # no stat() of every template on every page
    templates.env.globals.update(project=project, domain=project.config.domain, pct=pct, num=num, when=when,
                                 linked=linked, highlight=highlight, NAV=NAV)
    return templates


NAV = (("/", "Overview"), ("/data", "Data"), ("/evalsets", "Eval sets"), ("/runs", "Runs"), ("/judges", "Judges"),
       ("/final", "Final round"), ("/autopilot", "Autopilot"), ("/actions", "Actions"))


def linked(request: Request, **changes: Any) -> str:
    """This page's address with some query parameters changed (None or "" drops one): pagers, sort links."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v not in (None, "")]
    return request.url.path + (f"?{urlencode(params)}" if params else "")


def highlight(text: str, facts: list[str]) -> Markup:
    """`text`, escaped, with what states each fact in <mark>: the fact itself (any case), or a /regex/ fact's
    matches."""
    patterns = [f.strip()[1:-1] if is_regex(f) else re.escape(f) for f in facts if f.strip()]
    try:
        found = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None
    except re.error:
        found = None
    if found is None:
        return escape(text)
    parts, last = [], 0
    for match in found.finditer(text):
        if match.end() > match.start():
            parts += [escape(text[last:match.start()]), Markup("<mark>%s</mark>") % match.group()]
            last = match.end()
    return Markup("").join([*parts, escape(text[last:])])


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def when(t: float | None, short: bool = False) -> str:
    return time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"
