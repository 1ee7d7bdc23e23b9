"""Throughput of the shared call path against a loopback server that answers after a fixed 200 ms.

    .venv/bin/python bench/call_throughput.py [--requests-per-slot 20]

For each concurrency (1, 8, 32, 64) it prints requests/s achieved through `LLM.batch` (openai SDK, retries,
rate limiter, semaphore; no cache) as a ratio of the ideal concurrency / 0.2 s, the same through a project's
SQLite store (`+store`: cache lookups, the pending row written before each call, the reply and its log row
after; every prompt new, so nothing is a cache hit), and, as a baseline measured in the same process, the same
ratio for bare concurrent httpx POSTs. Target: >= 0.90 of ideal at concurrency 32. The server runs in its own
process so it does not share the client's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path

import httpx

from underdog.config import ModelSpec
from underdog.llm import LLM
from underdog.store import Store
from underdog.testing import ScriptedOpenAI, free_port

DELAY_S = 0.2


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(ScriptedOpenAI(delay_s=DELAY_S).app, host="127.0.0.1", port=port, log_level="error",
                backlog=4096)


def _wait_ready(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url + "/v1/models", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("bench server did not start")


def through_call_path(url: str, concurrency: int, n: int, tag: str, store: Store | None = None) -> float:
    spec = ModelSpec(provider="openai", model="scripted", base_url=url + "/v1", concurrency=concurrency,
                     timeout_s=30)
    llm = LLM(spec, store=store, stage="bench")
    prompts = [f"{tag} request {i}" for i in range(n)]
    llm.batch(prompts[: min(n, concurrency)])  # warm up connections
    started = time.perf_counter()
    llm.batch(prompts)
    return n / (time.perf_counter() - started)


async def _bare(url: str, concurrency: int, n: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(concurrency)
        body = {"model": "scripted", "messages": [{"role": "user", "content": "x"}]}

        async def one() -> None:
            async with semaphore:
                (await client.post(url + "/v1/chat/completions", json=body)).raise_for_status()

        await asyncio.gather(*(one() for _ in range(min(n, concurrency))))
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-slot", type=int, default=20,
                        help="requests per concurrency slot: more cycles, less ramp-up and tail in the ratio")
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    folder = tempfile.TemporaryDirectory()
    store = Store(Path(folder.name) / "underdog.db")
    try:
        _wait_ready(url)
        print(f"server answers after {DELAY_S * 1000:.0f} ms; ideal requests/s = concurrency / {DELAY_S}")
        print(f"{'concurrency':>11} {'ideal/s':>8} {'underdog/s':>10} {'ratio':>6} {'+store/s':>9} {'ratio':>6} "
              f"{'bare httpx/s':>12} {'ratio':>6}")
        for concurrency in (1, 8, 32, 64):
            n = max(10, concurrency * args.requests_per_slot)
            ideal = concurrency / DELAY_S
            ours = through_call_path(url, concurrency, n, tag=f"c{concurrency}")
            stored = through_call_path(url, concurrency, n, tag=f"s{concurrency}-{time.time()}", store=store)
            bare = asyncio.run(_bare(url, concurrency, n))
            print(f"{concurrency:>11} {ideal:>8.0f} {ours:>10.1f} {ours / ideal:>6.2f} {stored:>9.1f} "
                  f"{stored / ideal:>6.2f} {bare:>12.1f} {bare / ideal:>6.2f}")
    finally:
        server.terminate()
        store.close()
        folder.cleanup()


if __name__ == "__main__":
    main()
