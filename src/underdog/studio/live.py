"""Live panels: server-sent events that carry a panel's newly rendered HTML whenever what it shows changes.

    return live(request, version=lambda: curve_version(project, run_id), render=lambda: render_curve(run_id))

The server polls a cheap version of the panel's data (a count and the newest rowid in SQLite, a file's size)
every POLL_S seconds and, when it changed, renders the panel again and sends it as one event; studio.js swaps it
into the element whose `data-live` names the stream, and closes the stream once a panel says it is final
(`data-final`: a finished run, a finished action). SQLite in WAL mode lets these reads run while a training run
writes its losses. A comment line is sent every KEEPALIVE_S so proxies keep the stream open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Hashable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

POLL_S = 0.25
KEEPALIVE_S = 15.0


def event(html: str) -> str:
    """One server-sent event whose data is `html` (one `data:` line per line of it)."""
    return "".join(f"data: {line}\n" for line in html.split("\n")) + "\n"


def live(request: Request, version: Callable[[], Hashable], render: Callable[[], str]) -> StreamingResponse:
    """A stream of `render()` each time `version()` changes (the first one at once), until the client leaves
    or the server stops."""
    return StreamingResponse(_events(request, version, render), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def _events(request: Request, version: Callable[[], Hashable], render: Callable[[], str]
                  ) -> AsyncIterator[str]:
    last: Hashable = object()
    quiet_since = time.monotonic()
    state = request.app.state
    while not getattr(state, "stopping", False) and not await request.is_disconnected():
        now = await run_in_threadpool(version)
        if now != last:
            last = now
            yield event(await run_in_threadpool(render))
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_S:
            yield ": keepalive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_S)
