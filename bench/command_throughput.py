"""Whole commands as a user runs them (`generate`, `ingest`, `judge`), against a loopback server with lognormal
latency (median 0.5 s, mean 0.567 s) and concurrency 32.

    .venv/bin/python bench/command_throughput.py [--repeats 3] [--topics 100] [--chunks 400] [--questions 200]
        [--baseline-src ../main-before/src]   # also run another checkout's CLI, alternating, and print the ratio

Each command runs in a subprocess (`python -m underdog ...`) in a fresh project, so start-up, cache lookups,
checkpoints and the dataset write all count. It prints requests/s over the command's wall time, the ratio to the
ideal (concurrency / mean latency), the share of the wall time between the first and last request at the
server ("busy"), how long after the command's start its first request arrived ("lead") and how long after the
last one arrived it ended ("tail"), and the ratio to a zero-overhead client ("of perfect": a simulation of the same
number of requests through the same latency distribution and concurrency, all started at time 0: 0.89 of the
ideal at 400 requests, because the last round drains alone). The subprocesses write bytecode (to a temporary
PYTHONPYCACHEPREFIX, compiled before the first run) as an installed package has it, even where the environment sets
PYTHONDONTWRITEBYTECODE (this machine does: without bytecode every command compiles underdog's modules, ~0.3 s
of start-up; `--no-bytecode` measures that way). With synthetic-data-kit
installed it runs the peer's Q&A job (`synthetic-data-kit create doc.txt --type qa`, the job `ingest` does: the
same 400 passages as one document, chunk size 2000, its batch size 32 = our concurrency) on the same server and
prints each command's ratio to it.
The server runs in its own process and replies validly to underdog's prompts (`underdog.testing`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MEDIAN_S, SIGMA, CONCURRENCY = 0.5, 0.5, 32
MEAN_S = MEDIAN_S * math.exp(SIGMA**2 / 2)
IDEAL = CONCURRENCY / MEAN_S
PYCACHE = Path(tempfile.mkdtemp(prefix="underdog-bench-pyc-"))


def perfect_seconds(requests: int, draws: int = 200) -> float:
    """Median wall time of a client with no overhead: `requests` through CONCURRENCY slots, all ready at 0."""
    import heapq
    import random

    def one(seed: int) -> float:
        rng, slots, end = random.Random(seed), [0.0] * CONCURRENCY, 0.0
        for _ in range(requests):
            finish = heapq.heappop(slots) + rng.lognormvariate(math.log(MEDIAN_S), SIGMA)
            end = max(end, finish)
            heapq.heappush(slots, finish)
        return end

    return statistics.median(one(seed) for seed in range(draws))


def _env(src: str | None, bytecode: bool) -> dict[str, str]:
    env = os.environ | {"BENCH_API_KEY": "sk-bench", "COLUMNS": "200"}
    if src:
        env["PYTHONPATH"] = src
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def compile_sources(src: str | None) -> None:
    """Bytecode of the underdog package that `src` (or this environment) imports and of the libraries its
    commands import, under PYCACHE (with a pycache prefix Python ignores the __pycache__ folders pip wrote)."""
    env = _env(src, bytecode=True)
    find = "import underdog, pathlib; print(pathlib.Path(underdog.__file__).parent)"
    package = subprocess.run([sys.executable, "-c", find], env=env, capture_output=True, text=True, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package.stdout.strip()], env=env, check=True,
                   capture_output=True)
    warm = ("import underdog.cli.progress, underdog.project, underdog.data.ingestion, underdog.data.generation, "
            "underdog.evaluate.judge, underdog.evaluate.answer, underdog.llm.openai_api, uvloop, sqlite3, json")
    subprocess.run([sys.executable, "-c", warm], env=env, check=True, capture_output=True)


def _serve(port: int) -> None:
    import uvicorn

    from underdog.testing import ScriptedOpenAI, lognormal_latency, plausible_reply

    fake = ScriptedOpenAI(plausible_reply, latency=lognormal_latency(MEDIAN_S, SIGMA))
    uvicorn.run(fake.app, host="127.0.0.1", port=port, log_level="error", backlog=4096)


def _stats(url: str, since: int = 0) -> dict:
    return httpx.get(url + "/_stats", params={"since": since}, timeout=5).json()


def _wait_ready(url: str) -> None:
    for _ in range(400):
        try:
            _stats(url)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("bench server did not start")


def _config(url: str) -> str:
    role = (f"{{provider: openai, model: bench, base_url: '{url}/v1', api_key_env: BENCH_API_KEY, "
            f"concurrency: {CONCURRENCY}, timeout_s: 60, params: {{temperature: 0.7, max_tokens: 256}}")
    return (f"domain: city services\nmodels:\n  teacher: {role}}}\n  judge: {role}}}\n  student: {role}}}\n"
            f"  reference: {role}, system_prompt: 'You are the big reference model.'}}\n")


def _project(url: str, topics: int, chunks: int, questions: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="underdog-bench-"))
    (root / "underdog.yaml").write_text(_config(url))
    names = "\n".join(f"    - permit type {i}" for i in range(topics))
    (root / "topics.yaml").write_text(f"categories:\n  Permits:\n{names}\n")
    docs = root / "docs"
    docs.mkdir()
    for i in range(chunks):  # one chunk per file: each shorter than data.chunk_size
        (docs / f"page{i:04d}.txt").write_text(f"Section {i}. " + "Vendors must renew permits every year. " * 35)
    (root / "questions.jsonl").write_text("".join(json.dumps({"question": f"How do I renew permit {i}?"}) + "\n"
                                                  for i in range(questions)))
    return root


def _cli(root: Path, *args: str, src: str | None = None, bytecode: bool = True) -> float:
    env = _env(src, bytecode)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "underdog", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"underdog {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _peer_project(url: str, chunks: int) -> Path:
    """A synthetic-data-kit config (its own defaults, pointed at the server) and one document of `chunks`
    passages (each one of its chunks, like one of ingest's files)."""
    import yaml
    from synthetic_data_kit.utils.config import load_config

    root = Path(tempfile.mkdtemp(prefix="underdog-bench-peer-"))
    config = load_config()
    config["api-endpoint"] |= {"api_base": f"{url}/v1", "model": "bench", "api_key": None}
    config["generation"] |= {"chunk_size": 2000, "overlap": 200, "batch_size": CONCURRENCY, "max_tokens": 256,
                             "temperature": 0.7}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    text = "\n\n".join(f"Section {i}. " + "Vendors must renew permits every year. " * 35 for i in range(chunks))
    (root / "doc.txt").write_text(text)
    return root


def run_peer(url: str, sizes: argparse.Namespace) -> dict:
    """synthetic-data-kit's Q&A job on the same server, as a user runs it (its CLI in a subprocess)."""
    root = _peer_project(url, sizes.chunks)
    before = _stats(url)
    command = [sys.executable, "-c", "from synthetic_data_kit.cli import app; app()", "-c", "config.yaml",
               "create", "doc.txt", "--type", "qa", "-n", str(3 * sizes.chunks), "-o", "out"]
    env = os.environ | {"API_ENDPOINT_KEY": "sk-bench", "COLUMNS": "200"}
    started = time.time()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.time() - started
    if done.returncode or not list((root / "out").glob("*.json")):
        raise RuntimeError(f"synthetic-data-kit failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    shutil.rmtree(root)
    return _timings(url, before, started, elapsed)


def run_command(url: str, command: str, sizes: argparse.Namespace, src: str | None) -> dict:
    """One command in a fresh project (setup calls, e.g. the answers before `judge`, are not timed)."""
    root = _project(url, sizes.topics, sizes.chunks, sizes.questions)
    if command == "judge":
        for setup in (["evalset", "import", "questions.jsonl", "--name", "bench"], ["answer", "student"],
                      ["answer", "reference"]):
            _cli(root, *setup, src=src, bytecode=sizes.bytecode)
    before = _stats(url)
    args = {"generate": ["generate"], "ingest": ["ingest", "docs", "--name", "docs"],
            "judge": ["judge", "student", "--quiet"]}[command]
    started = time.time()
    elapsed = _cli(root, *args, src=src, bytecode=sizes.bytecode)
    shutil.rmtree(root)
    return _timings(url, before, started, elapsed)


def _timings(url: str, before: dict, started: float, elapsed: float) -> dict:
    """Requests/s over the wall time; the busy share, lead and tail from the server's arrival times."""
    after = _stats(url, since=before["requests"])
    requests = after["requests"] - before["requests"]
    busy = after["last"] - after["first"]
    lead = after["first"] - started
    return {"requests": requests, "rate": requests / elapsed, "busy": busy / elapsed, "lead": lead,
            "tail": elapsed - lead - busy}


HEADER = (f"{'command':>9} {'sources':>8} {'requests':>8} {'req/s min':>9} {'median':>7} {'of ideal':>8} "
          f"{'of perfect':>10} {'busy':>5} {'lead s':>6} {'tail s':>6}")


def _print_row(command: str, name: str, got: list[dict]) -> None:
    rates = [r["rate"] for r in got]
    rate, requests = statistics.median(rates), got[0]["requests"]
    perfect = requests / perfect_seconds(requests)
    print(f"{command:>9} {name:>8} {requests:>8} {min(rates):>9.1f} {rate:>7.1f} {rate / IDEAL:>8.2f} "
          f"{rate / perfect:>10.2f} {statistics.median(r['busy'] for r in got):>5.2f} "
          f"{statistics.median(r['lead'] for r in got):>6.2f} {statistics.median(r['tail'] for r in got):>6.2f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--topics", type=int, default=100, help="generate: topics (x6 questions each)")
    parser.add_argument("--chunks", type=int, default=400, help="ingest: chunks (one file each)")
    parser.add_argument("--questions", type=int, default=200, help="judge: eval-set questions (x2 orders)")
    parser.add_argument("--commands", default="generate,ingest,judge")
    parser.add_argument("--baseline-src", help="also run each command with PYTHONPATH=this (e.g. main's src), "
                        "alternating with this checkout's runs, and print the ratio")
    parser.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                        help="compile underdog from source in every command (PYTHONDONTWRITEBYTECODE as set)")
    args = parser.parse_args()
    from underdog.testing import free_port

    if args.bytecode:
        for src in {None, args.baseline_src}:
            compile_sources(src)

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server too when the bench is stopped
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        print(f"latency lognormal: median {MEDIAN_S} s, mean {MEAN_S:.3f} s; concurrency {CONCURRENCY}; "
              f"ideal {IDEAL:.1f} requests/s")
        print(HEADER)
        medians = {}
        for command in args.commands.split(","):
            sources = {"this": None} | ({"baseline": args.baseline_src} if args.baseline_src else {})
            runs: dict[str, list[dict]] = {name: [] for name in sources}
            for _ in range(args.repeats):  # alternate, so both see the same load on a shared machine
                for name, src in sources.items():
                    runs[name].append(run_command(url, command, args, src))
            for name, got in runs.items():
                _print_row(command, name, got)
            medians[command] = statistics.median(r["rate"] for r in runs["this"])
            if args.baseline_src:
                ratio = medians[command] / statistics.median(r["rate"] for r in runs["baseline"])
                print(f"{command:>9} this / baseline: {ratio:.2f}", flush=True)
        if importlib.util.find_spec("synthetic_data_kit") is None:
            print("peer synthetic-data-kit: not installed, skipped (issue 11 measured it at 7.3-8.7 requests/s)")
            return
        peer = [run_peer(url, args) for _ in range(args.repeats)]
        _print_row("peer", "sdk", peer)
        peer_rate = statistics.median(r["rate"] for r in peer)
        print("ratio to the peer (synthetic-data-kit's Q&A job): " + ", ".join(
            f"{command} {rate / peer_rate:.1f}x" for command, rate in medians.items()), flush=True)
    finally:
        server.terminate()
        shutil.rmtree(PYCACHE, ignore_errors=True)


if __name__ == "__main__":
    main()
