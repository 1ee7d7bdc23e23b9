"""The studio on a big project: every page's server time, the live curve's delay, the studio's memory.

    .venv/bin/python bench/studio.py [--runs 200] [--points 500] [--examples 100000] [--versions 20]
                                     [--judgments 20000] [--votes 10000] [--requests 20] [--keep DIR]

Seeds a project with synthetic rows (a simulation: numbered fees, forms and towns, random losses and verdicts),
written through the stages' own functions (save_dataset, save_manifest -> put_run, record_judging, put_answers,
put_vote, the autopilot's Journal, tune-prompt's write_report), then starts `underdog studio` as a user would (a
subprocess on loopback) and reports, per page, the time from request to full response (the first request, then
p50 / p95 of --requests more, sequential) next to a static file served by the same server (the floor), the delay from
a new loss row in the store to the live event that carries it on an open run page (--probes times), and the
studio's resident memory after every page was served. Goals (issue 21): every page <= 300 ms median, the live
curve within 2 s, memory < 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from underdog.arena import store as arena_tables
from underdog.arena.simulated_panel import cast_simulated_votes
from underdog.autopilot.journal import Journal
from underdog.data.curation import DECISIONS_FILE, REPORT_FILE, Report
from underdog.data.dataset import Example, list_datasets, save_dataset
from underdog.data.preferences import PreferencePair, save_preferences
from underdog.data.topics import Topic, write_topics
from underdog.evaluate import store as eval_tables
from underdog.evaluate.evalset import Question, save_evalset
from underdog.evaluate.judge import jury_config
from underdog.evaluate.jury_status import votes_version
from underdog.project import Project, init_project
from underdog.store import PENDING_INSERT
from underdog.testing import free_port
from underdog.train import store as train_tables
from underdog.train.runs import RunManifest, save_manifest
from underdog.tune.prompt import Cell, Prompt, TuneResult, write_report

TOWNS = ("Harrowgate", "Eastbrook", "Millbury", "Stonefield", "Ashcombe", "Larkmoor", "Fenwick", "Oakhollow")
THINGS = ("food truck permit", "dog licence", "building permit", "parking appeal", "property tax appeal",
          "marriage licence", "burn permit", "business licence", "septic inspection", "voter registration")
JURY = ["facts", "similarity"]
TOKEN = "studio-bench-token"


def qa(n: int) -> tuple[str, str]:
    """A synthetic question and answer (numbered, so every one differs)."""
    thing, town = THINGS[n % len(THINGS)], TOWNS[(n // len(THINGS)) % len(TOWNS)]
    return (f"How much is a {thing} in {town} (case {n})?",
            f"A {thing} in {town} costs ${40 + n % 200}; file form B-{n % 97} at the county office within "
            f"{10 + n % 20} days.")


def seed(root: Path, runs: int = 200, points: int = 500, examples: int = 100_000, versions: int = 20,
         judgments: int = 20_000, votes: int = 10_000, seed_: int = 0) -> Project:
    """A project with that many runs (each `points` logged losses), examples in versions, judgments and votes."""
    rng = random.Random(seed_)
    init_project("Synthetic county services (a simulation for the studio bench)", root)
    project = Project(root)
    write_topics(project, [Topic(thing, f"{thing} in {town}") for thing in THINGS for town in TOWNS[:3]])
    questions = _evalset(project)
    names = _datasets(project, rng, examples, versions)
    run_ids = _runs(project, rng, runs, points, names)
    _judgings(project, rng, run_ids, questions, judgments)
    _votes(project, rng, run_ids[:4], questions, votes)
    _after_votes(project, rng, run_ids[0], names[-1])
    _tuning(project, rng, run_ids[0])
    _autopilot(project, run_ids[:6])
    for stage, role, cost in (("generate", "teacher", 1.25), ("curate", "teacher", 0.4), ("judge", "judge", 1.8)):
        for _ in range(20):
            project.store.log_call(stage=stage, role=role, provider="openai", model="gpt-4o-mini", cached=0,
                                   input_tokens=900, output_tokens=200, latency_s=0.8, cost_usd=cost / 20)
    return project


def _evalset(project: Project) -> list[Question]:
    questions = []
    for i in range(50):
        question, answer = qa(1_000_000 + i)
        if i % 10 == 9:
            questions.append(Question(f"q{i:02d}", f"What is the home address of the clerk (probe {i})?",
                                      expect="refusal"))
        else:
            fee = answer.split("$")[1].split(";")[0]
            form = f"/form\\s*B-{(1_000_000 + i) % 97}/"
            questions.append(Question(f"q{i:02d}", question, answer, facts=[f"${fee}", form]))
    save_evalset(project, "held-out", questions, source="synthetic (bench/studio.py)")
    return questions


def _datasets(project: Project, rng: random.Random, total: int, versions: int) -> list[str]:
    per = total // versions
    names: list[str] = []
    for v in range(versions):
        parent = rng.choice(names) if names else None
        command = "generate" if parent is None else ("curate", "augment", "import")[v % 3]
        name = f"v{v:02d}-{command}"
        items = [Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                         {"topic": THINGS[n % len(THINGS)], "slice": "base"})
                 for n in range(v * per, (v + 1) * per) for q, a in [qa(n)]]
        if v == 1:  # one example a browser must show as text
            items[0] = Example([{"role": "user", "content": "<script>window.pwned = 1</script> what is this?"},
                                {"role": "assistant", "content": "<b>not bold</b> & <i>not italic</i>"}])
        counts, report = None, None
        if command == "curate":
            report = Report(per + per // 10)
            for i in range(per // 10):
                reason = ("near_duplicate", "eval_contamination", "low_rating", "too_short",
                          "semantic_duplicate")[i % 5]
                dropped = Example(items[i].messages[:1] + [{"role": "assistant", "content": f"dup {i}"}])
                if reason in ("near_duplicate", "semantic_duplicate"):
                    semantic = reason == "semantic_duplicate"
                    report.drop_match(reason, dropped, "example", items[i].question, 0.93 if semantic else 0.9,
                                      "cosine" if semantic else "jaccard", matched_id=items[i].id)
                elif reason == "eval_contamination":
                    report.drop_match(reason, dropped, f"held-out/q{i % 50:02d}", f"eval question {i % 50}", 0.8,
                                      "jaccard")
                else:
                    report.drop(reason, dropped, "synthetic")
            counts = {k: v for k, v in report.to_json(per).items() if k in ("input", "kept", "removed", "fixed")}
        save_dataset(project.root, name, items, parent=parent, recipe={"command": command, "base": parent},
                     counts=counts)
        if report is not None:
            (project.dataset_dir(name) / REPORT_FILE).write_text(json.dumps(report.to_json(per)))
            report.write_decisions(items, project.dataset_dir(name) / DECISIONS_FILE)
        names.append(name)
    return names


def _runs(project: Project, rng: random.Random, runs: int, points: int, datasets: list[str]) -> list[str]:
    ids = []
    start = time.time() - runs * 600
    for r in range(runs):
        run_id = f"run-{r:03d}"
        floor, speed = rng.uniform(0.2, 0.8), rng.uniform(0.005, 0.03)
        history = []
        for step in range(1, points + 1):
            history.append({"step": step, "epoch": round(step / 100, 4), "loss": floor + 2 * (1 - speed) ** step
                            + rng.uniform(-0.03, 0.03), "learning_rate": 2e-4})
            if step % max(points // 5, 1) == 0:
                history.append({"step": step, "epoch": step / 100, "eval_loss": floor + 0.1 + (1 - speed) ** step})
        hp = {"epoch": points // 100, "learning_rate": rng.choice([1e-4, 2e-4, 5e-4]), "lora_r": rng.choice([8, 16]),
              "lora_alpha": 32, "per_device_train_batch_size": 4}
        manifest = RunManifest(run_id, "done", rng.choice(datasets), "HuggingFaceTB/SmolLM2-135M-Instruct", hp,
                               {"train_loss": history[-2]["loss"], "eval_loss": history[-1]["eval_loss"]},
                               created=start + r * 600, history=history,
                               overfit={"flag": r % 17 == 0, "reason": "eval loss rose" if r % 17 == 0 else None,
                                        "epoch": 3 if r % 17 == 0 else None})
        save_manifest(project.root, manifest, project.store)
        ids.append(run_id)
    live = RunManifest("live-run", "running", datasets[0], "tiny", {"epoch": 1}, created=time.time())
    save_manifest(project.root, live, project.store)
    return ids


def _judgings(project: Project, rng: random.Random, run_ids: list[str], questions: list[Question],
              total: int) -> None:
    per = len(questions) * len(JURY) * 2
    config_id, config = jury_config(project, JURY, ["correctness"], "held-out")
    reference = [_answer(candidate_id="ref", evalset="held-out", question_id=q.id, candidate="reference",
                         question=q.question, answer=q.reference or "I cannot share that.") for q in questions]
    eval_tables.put_answers(project.store, reference)
    for run_id in run_ids[: max(1, total // per)]:
        answers = [_answer(candidate_id=f"cand-{run_id}", evalset="held-out", question_id=q.id, candidate=run_id,
                           question=q.question, answer=(q.reference or "I can't help with that.")
                           if rng.random() < 0.6 else "Ask the office.") for q in questions]
        eval_tables.put_answers(project.store, answers)
        rows = [{"question_id": q.id, "judge": judge, "judge_order": order, "verdict": verdict,
                 "winner": {"A": "candidate", "B": "reference"}.get(verdict, "tie") if order == "ab" else
                 {"A": "reference", "B": "candidate"}.get(verdict, "tie"), "cache_key": f"{run_id}{q.id}{judge}{order}",
                 "cached": 1, "error": None}
                for q in questions for judge in JURY for order in ("ab", "ba")
                for verdict in [rng.choice(["A", "B", "tie"])]]
        wins = rng.randint(10, 40)
        eval_tables.record_judging(project.store, {
            "evalset": "held-out", "candidate": run_id, "candidate_id": f"cand-{run_id}", "reference": "reference",
            "reference_id": "ref", "judges": json.dumps(JURY), "rubric": json.dumps(["correctness"]), "n": 50,
            "wins": wins, "ties": 5, "losses": 45 - wins, "errors": 0, "win_rate": (wins + 2.5) / 50,
            "ci_low": max(0.0, (wins - 7) / 50), "ci_high": min(1.0, (wins + 12) / 50), "tie_share": 0.1,
            "consistency": 0.8, "mean_len_candidate": 90.0, "mean_len_reference": 110.0, "lc_win_rate": None,
            "config_id": config_id, "judge_config": json.dumps(config), "fact_recall": rng.uniform(0.2, 0.9),
            "fact_recall_low": 0.1, "fact_recall_high": 0.95, "refusal_accuracy": 0.6, "grounded": None}, rows)


def _answer(**fields: object) -> dict[str, object]:
    return dict.fromkeys(c for c in eval_tables.ANSWER_COLUMNS if c != "created") | fields


def _votes(project: Project, rng: random.Random, candidates: list[str], questions: list[Question],
           total: int) -> None:
    styles = ("{}", "**{}**", "{}\n\n- file the form\n- pay the fee", "## Answer\n{} Ask the clerk for details.")
    answers = {(q.id, c): styles[i % len(styles)].format(f"{c} says: {q.reference or 'no'}")
               for q in questions for i, c in enumerate(candidates)}
    arena_tables.put_items(project.store, [{"question_id": q.id, "candidate": c, "question": q.question,
                                            "answer": answers[q.id, c], "source": "bench"}
                                           for q in questions for c in candidates])
    text = {q.id: q.question for q in questions}
    pairs = [(q.id, a, b) for q in questions for a in candidates for b in candidates if a < b]
    voters = max(1, -(-total // len(pairs)))
    with project.store.transaction() as db:
        count = 0
        for v in range(voters):
            voter = f"voter-{v}"
            arena_tables.save_voter(db, voter, "csrf", "judge" if v % 5 == 0 else "audience")
            for qid, a, b in pairs:
                if count == total:
                    break
                choice = rng.choice(["A", "B", "tie"])
                arena_tables.put_vote(db, {"voter_id": voter, "role": "judge" if v % 5 == 0 else "audience",
                                           "question_id": qid, "cand_1": a, "cand_2": b, "shown_a": a, "shown_b": b,
                                           "choice": choice, "winner": {"A": a, "B": b}.get(choice),
                                           "ballot_id": f"b{count}", "question": text[qid],
                                           "answer_1": answers[qid, a], "answer_2": answers[qid, b]})
                count += 1


def _after_votes(project: Project, rng: random.Random, parent_run: str, dataset: str) -> None:
    """A SIMULATED panel's votes (the library's own panel), a calibration and a fitted `people` judge as
    `underdog calibrate` records them (synthetic numbers), a preference dataset, a DPO run with reward curves, and
    a call a killed process left pending."""
    from underdog.evaluate.judges.people import people_version  # imports scikit-learn

    cast_simulated_votes(project, voters=1)
    votes = arena_tables.load_votes(project.store)

    def estimate(value: float, width: float) -> dict[str, float]:
        return {"value": value, "low": value - width, "high": value + width}

    def row(judge: str, accuracy: float | None, kappa: float | None, note: str = "") -> dict[str, object]:
        return {"judge": judge, "votes": 0 if note else len(votes) // 2, "note": note,
                "accuracy": accuracy and estimate(accuracy, 0.06), "kappa": kappa and estimate(kappa, 0.08),
                "tau": None if note else 0.33, "candidates": 0 if note else 4,
                "examples": [] if kappa is None or kappa > -0.08 else [{
                    "question": votes[0].question, "people_chose": "the shorter answer",
                    "judge_chose": "the longer answer"}]}

    jury = {"judges": ["facts", "people"], "weights": {"facts": 1.0, "people": 0.6}, "held_out": 0.64,
            "low": 0.58, "high": 0.7, "votes": len(votes)}
    eval_tables.put_calibration(project.store, {
        "votes_version": votes_version(votes), "votes": len(votes), "jury": json.dumps(jury), "held_out": 0.64,
        "held_out_low": 0.58, "held_out_high": 0.7, "judges": json.dumps([
            row("facts", 0.66, 0.24), row("similarity", 0.41, -0.17), row("people (held out)", 0.61, 0.15),
            row("jury: facts + similarity", 0.55, 0.06)])})
    eval_tables.put_people_model(project.store, {
        "version": people_version(project, votes), "votes": len(votes),
        "decisive": sum(v.outcome != "tie" for v in votes), "accuracy": 0.61, "accuracy_low": 0.55,
        "accuracy_high": 0.67, "model": json.dumps({"weights": [], "scale": []})})
    pairs = [PreferencePair([{"role": "user", "content": v.question}], v.answer_1, v.answer_2,
                            {"source": "votes", "weight": 1.0}) for v in votes[:40] if v.outcome == "first"]
    pairs.append(PreferencePair([{"role": "user", "content": "<script>window.pwned = 2</script> which?"}],
                                "<script>window.pwned = 3</script> chosen", "<i>rejected</i>", {"source": "votes"}))
    save_preferences(project.root, "prefs-votes", pairs, parent=dataset, recipe={"command": "preferences",
                                                                                  "source": "votes"})
    history = []
    for step in range(1, 41):
        history.append({"step": step, "epoch": step / 40, "loss": 0.69 * 0.97 ** step, "learning_rate": 5e-6,
                        "reward_margin": 0.05 * step + rng.uniform(-0.1, 0.1),
                        "reward_accuracy": min(1.0, 0.5 + step / 80 + rng.uniform(-0.05, 0.05))})
        if step % 10 == 0:
            history.append({"step": step, "epoch": step / 40, "eval_loss": 0.7 * 0.98 ** step,
                            "reward_margin": 0.04 * step, "reward_accuracy": 0.5 + step / 100})
    save_manifest(project.root, RunManifest(
        "run-dpo", "done", "prefs-votes", "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"method": "dpo", "from_run": parent_run, "beta": 0.1, "epoch": 1, "learning_rate": 5e-6},
        {"train_loss": history[-2]["loss"], "eval_loss": history[-1]["eval_loss"]}, history=history),
        project.store)
    project.store.execute(PENDING_INSERT, {"id": "killed-0", "time": time.time() - 60, "process": "999999-dead",
                                           "pid": 999_999_999, "stage": "judge", "role": "judge", "provider": "openai",
                                           "model": "gpt-4o-mini", "cache_key": "k", "estimate_usd": 0.0125})


def _tuning(project: Project, rng: random.Random, run_id: str) -> None:
    prompts = [Prompt("plain", ""), Prompt("facts-first", "State the exact fee, form and office."),
               Prompt("friendly", "Be warm and clear.")]
    cells = [Cell(p, t, top_p, [rng.choice(["first", "second", "tie"]) for _ in range(40)], 200.0)
             for p in prompts for t in (0.3, 0.7) for top_p in (0.9, 1.0)]
    write_report(TuneResult(run_id, "held-out", "reference", 1, cells), project.report_dir("tune", run_id))


def _autopilot(project: Project, run_ids: list[str]) -> None:
    journal = Journal(project.path("autopilot"))
    journal.event(step="start", spent_usd=0.0)
    for stage, title, usd in (("generate", "generate 40 topics x 6 questions", 1.5),
                              ("judge", "judge 6 runs on the dev split", 2.0)):
        journal.event(step="reserve", stage=stage, title=title, usd=usd)
    for i, run_id in enumerate(run_ids):
        journal.event(step="rung", trial=i, rung=0 if i < 4 else 1, run_id=run_id, status="done", score=0.5 + i / 20,
                      numbers={"summary": f"fact recall {50 + i}%"}, note="")
        journal.decide("sweep", f"{run_id} continues to rung 1" if i % 2 else f"{run_id} dropped at rung 0",
                       why="asynchronous successive halving (synthetic)")


# -- measuring ---------------------------------------------------------------------------------------------------
def pages(project: Project) -> dict[str, str]:
    """Every page of the studio, with its heaviest realistic arguments."""
    result_id = eval_tables.counts(project.store)[0]
    names = list_datasets(project.root)
    curated = next(n for n in names if n.endswith("curate"))
    runs = sorted(p.name for p in project.runs_dir.iterdir() if p.name.startswith("run-"))
    return {
        "static file (floor)": "/static/studio.css", "overview": "/", "data (lineage)": "/data",
        "dataset examples": f"/data/{names[-1]}", "dataset search": f"/data/{names[-1]}?q=dog+licence+millbury",
        "dataset page 50": f"/data/{names[-2]}?page=50", "curation decisions": f"/data/{curated}/curation",
        "eval sets": "/evalsets", "eval set": "/evalsets/held-out", "runs": "/runs",
        "runs sorted by win rate": "/runs?sort=win_rate&dir=desc", "run": f"/runs/{runs[-1]}",
        "compare 3 runs": "/runs/compare?" + "&".join(f"id={r}" for r in runs[:3]), "judges": "/judges",
        "judging (question by question)": f"/judges/{result_id}", "judging: judges disagree":
            f"/judges/{result_id}?only=disagree", "final round": "/final", "autopilot": "/autopilot",
        "actions": "/actions", "preference pairs": "/data/prefs-votes", "DPO run (rewards)": "/runs/run-dpo",
    }


def time_pages(base: str, urls: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Per page: the first request's seconds (parses a dataset version, bootstraps the standings), then
    `requests` more."""
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, url in urls.items():
            t = time.perf_counter()
            client.get(url).raise_for_status()
            samples = [time.perf_counter() - t]
            for _ in range(requests):
                t = time.perf_counter()
                client.get(url).raise_for_status()
                samples.append(time.perf_counter() - t)
            timings[name] = samples
    return timings


def live_delays(base: str, project: Project, probes: int) -> list[float]:
    """Seconds from a new loss row committed to the event that carries it on the open live stream."""
    arrivals: list[tuple[float, str]] = []
    stop = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=base, timeout=None) as client, client.stream("GET", "/runs/live-run/live") as r:
            data: list[str] = []
            with contextlib.suppress(httpx.HTTPError):  # the server stops at the end
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("data: "):
                        data.append(line[6:])
                    elif not line and data:
                        arrivals.append((time.time(), "\n".join(data)))
                        data = []

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(1.5)
    delays = []
    for step in range(1, probes + 1):
        seen, expected = len(arrivals), train_tables.metrics_version(project.store, "live-run")[0] + 1
        written = time.time()
        train_tables.put_metric(project.store, {"run_id": "live-run", "step": step, "epoch": step / 10,
                                                "split": "train", "loss": 2.0 / step, "learning_rate": 1e-4})
        while len(arrivals) == seen and time.time() - written < 10:
            time.sleep(0.005)
        got = [t for t, html in arrivals[seen:] if f'data-points="{expected}"' in html]
        delays.append(got[0] - written if got else float("inf"))
        time.sleep(0.7)
    stop.set()
    return delays


def rss_mb(pid: int) -> float:
    import psutil  # comes with accelerate (a dependency)

    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("runs", 200), ("points", 500), ("examples", 100_000), ("versions", 20),
                          ("judgments", 20_000), ("votes", 10_000), ("requests", 20), ("probes", 10)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--keep", type=Path, help="seed (or reuse) the project in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="studio-bench-")) / "project"
    started = time.time()
    project = Project(root) if (root / "underdog.yaml").exists() else seed(
        root, args.runs, args.points, args.examples, args.versions, args.judgments, args.votes)
    print(f"seeded {root} in {time.time() - started:.0f} s: {args.runs} runs x {args.points} losses, "
          f"{args.examples:,} examples in {args.versions} versions, {eval_tables.counts(project.store)[1]:,} "
          f"judgments, {arena_tables.votes_version(project.store)[0]:,} votes", flush=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "underdog", "-C", str(root), "studio", "--port", str(port)],
                              env={**os.environ, "UNDERDOG_STUDIO_TOKEN": TOKEN}, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base)
        load_before = os.getloadavg()
        timings = time_pages(base, pages(project), args.requests)
        delays = live_delays(base, project, args.probes)
        memory = rss_mb(server.pid)
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(timings, delays, memory, load_before, load_after)


def _wait_for(base: str) -> None:
    for _ in range(600):
        try:
            httpx.get(base + "/static/studio.css", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the studio did not start")


def report(timings: dict[str, list[float]], delays: list[float], memory: float, load_before: tuple[float, ...],
           load_after: tuple[float, ...]) -> None:
    floor = statistics.median(timings["static file (floor)"][1:])
    print(f"\n{'page':34s} {'first ms':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'x floor':>8s}")
    worst = 0.0
    for name, (first, *samples) in timings.items():
        p50, p95 = statistics.median(samples) * 1000, _p95(samples) * 1000
        worst = max(worst, p50) if name != "static file (floor)" else worst
        print(f"{name:34s} {first * 1000:9.1f} {p50:8.1f} {p95:8.1f} {p50 / 1000 / floor:8.1f}")
    print(f"\nslowest page median: {worst:.0f} ms (goal <= 300 ms)")
    print(f"live curve: delay from the store row to the event p50 {statistics.median(delays):.2f} s, max "
          f"{max(delays):.2f} s over {len(delays)} rows (goal <= 2 s; the server polls every 0.25 s)")
    print(f"studio memory (RSS) after every page: {memory:.0f} MB (goal < 300 MB)")
    print(f"load average before / after: {' '.join(f'{x:.1f}' for x in load_before)} / "
          f"{' '.join(f'{x:.1f}' for x in load_after)} (2 cores)")


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
