"""Speed of the grounded judges: the `similarity` judge's batched embeddings, and the `facts` judge.

    .venv/bin/python bench/grounded_judges.py [--pairs 200]

`similarity`: judging N answer pairs against reference answers embeds 3N texts (the model is loaded first,
not timed). Baseline, measured in the same process: the same texts embedded one at a time (batch size 1), as a
naive loop would. The ratio baseline / batched is what batching buys. `facts`: pairs per second of the
deterministic judge (normalising and matching 4 facts per question), against the time to only normalise the
same answers, so the ratio is the cost of matching on top of normalising.
"""

from __future__ import annotations

import argparse
import sys
import time

from underdog.evaluate.judges import Item
from underdog.evaluate.judges import similarity as sim
from underdog.evaluate.judges.facts import FactsJudge, normalise


def items(n: int) -> list[Item]:
    return [Item(f"What is the fee for permit {i}?",
                 f"The fee for permit {i} is ${i},250.00, paid with Form B-{i} at Room {i % 9} within 30 days.",
                 f"Thank you for asking about permit {i}! The county office will help you with every step.",
                 reference=f"Permit {i} costs ${i},250 (Form B-{i}, Room {i % 9}), due within 30 days.",
                 facts=(f"${i},250", f"Form B-{i}", f"Room {i % 9}", "/30 (calendar )?days/")) for i in range(n)]


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    work = items(args.pairs)
    sim.embed(["warm-up"])  # load the model before timing
    texts = [t for i in work for t in (i.first, i.second, i.reference)]

    def one_by_one() -> None:
        for text in texts:
            sim._vectors.clear()
            sim.embed([text])

    def batched() -> None:
        sim._vectors.clear()
        sim.SimilarityJudge().decide(work)

    naive, fast = timed(one_by_one), timed(batched)
    print(f"similarity: {args.pairs} pairs ({len(texts)} texts) in {fast:.2f} s batched vs {naive:.2f} s one at a "
          f"time: {naive / fast:.1f}x faster ({args.pairs / fast:.0f} pairs/s)")
    judge = FactsJudge()
    matching = timed(lambda: judge.decide(work * 10))
    normalising = timed(lambda: [normalise(t) for i in work * 10 for t in (i.first, i.second)])
    print(f"facts: {10 * args.pairs / matching:.0f} pairs/s; matching costs {matching / normalising:.1f}x "
          f"normalising alone")


if __name__ == "__main__":
    sys.exit(main())
