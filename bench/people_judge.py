"""How many votes the `people` judge needs: its held-out accuracy against the number of SIMULATED panel votes.

    .venv/bin/python bench/people_judge.py [--sizes 20,40,80,160,320,640] [--noise 0.1] [--repeats 3]

No people are reachable offline, so the votes come from the simulated voter panel (arena/simulated_panel.py:
it prefers an answer that first acknowledges the resident's situation in one sentence, then gives the fact).
The arena holds the demo pack's 68 training questions answered by four scripted candidates: `plain` (the
teacher's answer), `detailed` (the answer plus a factual sentence: longer, no acknowledgement), `warm` (one
acknowledging sentence, then the answer) and `rambling` (two acknowledging sentences first, which the panel
likes less than one). 5 simulated voters vote on every pair (2,040 votes); for each size n, `repeats` seeded
samples of n votes are fitted and scored by grouped 5-fold cross-validation over questions (`fit_people`).
Baseline, on the same held-out votes: "the longer answer wins" (what a length-biased judge would do), and the
noise ceiling (a voter who follows the rule except `noise` of the time agrees with the rule on 1 - 2/3 noise of
the decisive votes, at best).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from underdog.arena import store as tables
from underdog.arena.simulated_panel import cast_simulated_votes
from underdog.arena.votes import add_items
from underdog.evaluate.evalset import question_id
from underdog.evaluate.judges.people import fit_people
from underdog.project import Project, init_project

ACKNOWLEDGEMENTS = ["I understand this can feel like a lot to sort out.",
                    "Sorry you're dealing with this; it's a common worry.",
                    "That sounds stressful, and you're right to check early.",
                    "Good question, many residents find this confusing.",
                    "Thanks for asking; it's completely normal to be unsure here.",
                    "Don't worry, this is easier than it looks.",
                    "It can be tricky to find this in the handbook.",
                    "Congratulations on getting started with this!"]
EXTRAS = ["The county clerk's office can confirm this by phone.", "Keep a copy of your receipt for your records.",
          "Office hours are listed on the county website.", "You can also ask at the front desk of the annex."]


def demo_questions() -> list[tuple[str, str]]:
    text = (resources.files("underdog") / "demo_pack" / "qa.jsonl").read_text()
    rows = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
    return [(m[0]["content"], m[1]["content"]) for m in rows]


def candidates(qa: list[tuple[str, str]], seed: int = 0) -> dict[str, list[tuple[str, str, str]]]:
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str, str]]] = {"plain": [], "detailed": [], "warm": [], "rambling": []}
    for question, answer in qa:
        qid = question_id(question)
        first, second = rng.sample(ACKNOWLEDGEMENTS, 2)
        out["plain"].append((qid, question, answer))
        out["detailed"].append((qid, question, f"{answer} {rng.choice(EXTRAS)}"))
        out["warm"].append((qid, question, f"{first} {answer}"))
        out["rambling"].append((qid, question, f"{first} {second} {answer}"))
    return out


def simulated_arena(root: Path, noise: float, seed: int) -> Project:
    init_project("Harrowgate County services", root)
    project = Project(root)
    for name, items in candidates(demo_questions(), seed).items():
        add_items(project.store, name, items, question_set="dataset:demo-qa")
    cast_simulated_votes(project, voters=5, noise=noise, seed=seed)
    return project


def longer_wins(votes: list[tables.Vote]) -> float:
    decided = [v for v in votes if v.outcome != "tie" and len(v.answer_1) != len(v.answer_2)]
    return sum((len(v.answer_1) > len(v.answer_2)) == (v.outcome == "first") for v in decided) / len(decided)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20,40,80,160,320,640")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = simulated_arena(Path(tmp) / "p", args.noise, seed=0)
        votes = tables.load_votes(project.store)
        weights = project.config.arena.weights
        print(f"{len(votes)} simulated votes, {sum(v.outcome != 'tie' for v in votes)} decisive; noise ceiling "
              f"{1 - 2 / 3 * args.noise:.1%} of decisive votes")
        print("votes  decisive  held-out accuracy per repeat     mean   95% CI (repeat 1)  longer-wins  fit s")
        for n in map(int, args.sizes.split(",")):
            runs = []
            for r in range(args.repeats):
                sample = random.Random(r).sample(votes, min(n, len(votes)))
                start = time.perf_counter()
                model = fit_people(sample, weights, version=f"bench-{n}-{r}")
                runs.append((model, time.perf_counter() - start, longer_wins(sample)))
            first = runs[0][0]
            each = [m.accuracy for m, _, _ in runs if m.accuracy is not None]
            print(f"{n:5d}  {first.decisive:8d}  {' '.join(f'{a:.0%}' for a in each):30s}  {np.mean(each):5.1%}  "
                  f"{first.low:.1%}-{first.high:.1%}  {np.mean([b for *_, b in runs]):11.1%}  "
                  f"{np.mean([t for _, t, _ in runs]):5.1f}")

if __name__ == "__main__":
    main()
