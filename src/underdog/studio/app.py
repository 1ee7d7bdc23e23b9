"""The studio's web app: pages over one project, server-rendered, with live panels and actions.

    app = create_app(Project("my-domain"), token="printed-at-start")
    uvicorn.run(app, host="127.0.0.1", port=8766)

Routes live in one module per page group (studio/pages/), what they read in studio/queries.py, who may act in
studio/context.py. Every text from the project is escaped by Jinja2's autoescaping; pages load no script but the
studio's own file (the Content-Security-Policy forbids inline and foreign scripts), and no CDN: it works offline.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware

from underdog.errors import ConfigError, UnderdogError
from underdog.project import Project
from underdog.studio.context import HERE, Studio, templates_for
from underdog.studio.jobs import Actions
from underdog.studio.pages import actions, data, final, judges, overview, runs
from underdog.web import SecurityHeaders, security_headers

STATIC = {"studio.css": "text/css", "studio.js": "text/javascript"}


def create_app(project: Project, token: str, hosts: list[str] | None = None) -> FastAPI:
    """The studio over `project`; `token` lets a browser act (start and cancel commands). With `hosts`, a request
    naming another host is refused (a page of another site that rebinds its name to 127.0.0.1 reads nothing)."""
    if len(token) < 8:
        raise ConfigError("the studio token ($UNDERDOG_STUDIO_TOKEN) must have at least 8 characters "
                          "(or leave it unset for a random one)")

    app = FastAPI(title="underdog studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders, headers=security_headers(scripts=True))
    if hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.state.studio = Studio(project.require(), token, templates_for(project), Actions(project))
    app.state.stopping = False  # set on Ctrl-C: the live streams end, so the server stops at once

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response(status_code=404)
        return FileResponse(HERE / "static" / name, media_type=STATIC[name])

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.exception_handler(UnderdogError)
    def one_line(request: Request, exc: UnderdogError) -> Response:
        """A malformed artifact (topics.yaml, a manifest) is one line on the page, as in the terminal."""
        return app.state.studio.page(request, "message.html", status=500, heading="Cannot read the project",
                                     text=str(exc))

    for module in (overview, data, runs, judges, final, actions):
        app.include_router(module.router)
    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run the studio until Ctrl-C (or SIGTERM); its open live streams end at once then, instead of holding the
    server for its graceful-shutdown timeout."""

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.stopping = True
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)).run()
