"""Near-duplicate removal: MinHash LSH (`underdog.data.dedup.near_duplicates`) vs a naive all-pairs baseline,
and curation's dedup + decontamination with the semantic pass (embeddings) at 100k examples x 500 eval questions.

    .venv/bin/python bench/dedup_bench.py [--sizes 10000 100000] [--naive-size 10000]
    .venv/bin/python bench/dedup_bench.py --semantic 100000 [--eval-questions 500]

Synthetic questions (8-14 content words from a 20k-word vocabulary, in question templates), 10% of them planted
near-duplicates of an earlier one (one word swapped, words reordered or a filler word added). Prints seconds per
1k examples for each size (their ratio shows how close to linear the scaling is), the same for the naive
all-pairs baseline on the smaller size, the speedup, and how many planted duplicates each method found.
Each LSH size runs in a fresh process, which reports its peak RSS (resource.getrusage) with and without the input
texts, and the peak extrapolated linearly to 1M examples. Recall: the share of the exact-Jaccard (naive)
duplicates that LSH also removes, on the naive baseline's texts. Goal (issue 11): 1M in <= 1.5 GB, recall >= 0.96.

`--semantic N` (issue 19: 100k x 500 in <= 5 minutes on 2 cores, under 2 GB) times curation's own steps on N
examples in a fresh process: exact + MinHash dedup, MinHash decontamination, then `semantic_pass` (embedding
every question left and the eval questions, then the all-pairs cosine search). The texts are questions of
real English words (from the embedding model's vocabulary; ~36 tokens each, as the seed author's 966 questions:
mean 38), 10% planted word-level near-duplicates, 50 planted copies of eval questions with one word swapped. It
prints wall and CPU seconds (CPU / 2 is the wall time two idle cores would need, the machine being shared), the
embedding's share, peak RSS, and the load average: the MinHash steps are the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

from underdog.config import CurateConfig
from underdog.data.curation import Report, decontaminate, deduplicate, semantic_pass
from underdog.data.dataset import Example
from underdog.data.dedup import naive_near_duplicates, near_duplicates
from underdog.llm.embeddings import load
from underdog.progress import NoTask, Silent, Task

TEMPLATES = ["How do I {}?", "What is needed for {}?", "Can you explain {}?", "Where should I go about {}?",
             "Who handles {}?", "Why does {} take so long?"]


def synthetic(n: int, seed: int = 0, dup_share: float = 0.1) -> tuple[list[str], set[int]]:
    """n questions; returns them and the indexes of the planted near-duplicates."""
    rng = random.Random(seed)
    vocab = [f"w{i}x" for i in range(20_000)]
    texts: list[str] = []
    planted: set[int] = set()
    for i in range(n):
        if texts and rng.random() < dup_share:
            words = texts[rng.randrange(len(texts))].split()
            edit = rng.randrange(3)
            if edit == 0:
                words[rng.randrange(len(words))] = rng.choice(vocab)  # one word swapped
            elif edit == 1:
                rng.shuffle(words)  # reordered
            else:
                words.insert(rng.randrange(len(words)), "please")  # a filler word
            texts.append(" ".join(words))
            planted.add(i)
        else:
            body = " ".join(rng.sample(vocab, rng.randint(8, 14)))
            texts.append(rng.choice(TEMPLATES).format(body))
    return texts, planted


def timed(fn, texts: list[str], threshold: float) -> tuple[float, list[int | None]]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(texts, threshold)
    return time.perf_counter() - start, result


def _measure(n: int, threshold: float, out) -> None:  # type: ignore[no-untyped-def]
    texts, planted = synthetic(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, input included
    seconds, result = timed(near_duplicates, texts, threshold)
    found = {i for i, m in enumerate(result) if m is not None}
    out.send((seconds, len(found), len(planted), len(found & planted), before,
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_fresh_process(n: int, threshold: float) -> tuple:
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_measure, args=(n, threshold, child))
    process.start()
    got = parent.recv()
    process.join()
    return got


def english(n: int, n_eval: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n training questions of English words (10% near-duplicates with one word swapped, 2% with a third of
    their words swapped, 50 copies of eval questions with one word swapped) and n_eval eval questions."""
    rng = random.Random(seed)
    vocab = sorted(w for w in load()[0].get_vocab() if w.isalpha() and w.isascii() and len(w) >= 3)

    def question() -> str:
        a, b, c = (" ".join(rng.sample(vocab, rng.randint(lo, hi))) for lo, hi in ((6, 10), (6, 10), (8, 12)))
        return f"I {a}, and {b}. How can I {c}?"

    def swapped(text: str, share: float = 0.0) -> str:
        """One word (or `share` of the words) replaced."""
        words = text.split()
        for _ in range(max(1, int(len(words) * share))):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        return " ".join(words)

    evals = [question() for _ in range(n_eval)]
    texts: list[str] = []
    for i in range(n):
        if i % (n // 50 or 1) == 0 and evals:
            texts.append(swapped(rng.choice(evals)))
        elif texts and rng.random() < 0.1:
            texts.append(swapped(texts[rng.randrange(len(texts))]))
        elif texts and rng.random() < 0.02:  # a third of the words replaced: few left for MinHash
            texts.append(swapped(texts[rng.randrange(len(texts))], share=1 / 3))
        else:
            texts.append(question())
    return texts, evals


class Timing(Silent):
    """A reporter that times its tasks (the embedding, in `semantic_pass`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.totals: dict[str, int] = {}

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[Task]:
        start = time.perf_counter()
        yield NoTask()
        self.seconds[label], self.totals[label] = time.perf_counter() - start, total


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure_semantic(n: int, n_eval: int, out) -> None:  # type: ignore[no-untyped-def]
    cfg = CurateConfig()
    texts, evals = english(n, n_eval)
    answer = "An answer long enough to keep."
    examples = [Example([{"role": "user", "content": t}, {"role": "assistant", "content": answer}], {})
                for t in texts]
    questions = [{"evalset": "bench", "id": str(i), "question": q} for i, q in enumerate(evals)]
    report, timing = Report(n), Timing()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), cpu_seconds()
    kept = decontaminate(deduplicate(examples, report, cfg.near_dup_threshold), questions, report,
                         cfg.decontam_threshold)
    words, words_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    kept = semantic_pass(kept, questions, report, cfg.semantic_dup_threshold, cfg.semantic_decontam_threshold,
                         timing)
    out.send({"words": words, "words_cpu": words_cpu, "total": time.perf_counter() - start,
              "total_cpu": cpu_seconds() - cpu, "embedding": timing.seconds["embedding questions"],
              "embedded": timing.totals["embedding questions"],
              "removed": dict(report.removed), "kept": len(kept), "before": before,
              "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def semantic(n: int, n_eval: int) -> None:
    load_before = os.getloadavg()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_measure_semantic, args=(n, n_eval, child))
    process.start()
    got = parent.recv()
    process.join()
    semantic_s = got["total"] - got["words"]
    print(f"curation dedup + decontamination, {n:,} examples x {n_eval} eval questions "
          f"(load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores):")
    print(f"  MinHash steps (baseline): {got['words']:7.1f} s wall, {got['words_cpu']:7.1f} s CPU")
    search = semantic_s - got["embedding"]
    print(f"  semantic pass:            {semantic_s:7.1f} s wall ({got['embedding']:.1f} s embedding "
          f"{got['embedded']:,} texts, {search:.1f} s search); {semantic_s / max(got['words'], 1e-9):.1f}x the "
          "baseline")
    print(f"  all:                      {got['total']:7.1f} s wall, {got['total_cpu']:7.1f} s CPU "
          f"(/2 = {got['total_cpu'] / 2:.0f} s on two idle cores; goal <= 300 s)")
    print(f"  peak RSS {got['peak']:,.0f} MiB ({got['before']:,.0f} MiB with the texts; goal < 2048 MiB); "
          f"removed {got['removed']}, kept {got['kept']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive-size", type=int, default=10_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--semantic", type=int, metavar="N", help="time curation's passes on N examples instead")
    parser.add_argument("--eval-questions", type=int, default=500)
    args = parser.parse_args()
    if args.semantic:
        semantic(args.semantic, args.eval_questions)
        return

    per_1k, peaks = {}, {}
    for n in args.sizes:
        seconds, removed, n_planted, hit, before, peak = in_fresh_process(n, args.threshold)
        per_1k[n], peaks[n] = seconds / n * 1000, peak
        print(f"MinHash LSH  n={n:>7,}: {seconds:7.2f} s = {per_1k[n]:.3f} s per 1k examples; "
              f"removed {removed:,} (planted {n_planted:,}, found {hit:,}); "
              f"peak RSS {peak:,.0f} MiB ({before:,.0f} MiB with only the input texts)")
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        at_1m = peaks[large] + (peaks[large] - peaks[small]) / (large - small) * (1_000_000 - large)
        print(f"peak RSS extrapolated linearly to 1M examples: {at_1m:,.0f} MiB (goal <= 1536 MiB)")
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        print(f"scaling: per-1k time at {large:,} / at {small:,} = {per_1k[large] / per_1k[small]:.2f} "
              f"(1.0 = linear; {large // small} = quadratic)")

    texts, planted = synthetic(args.naive_size)
    seconds, result = timed(naive_near_duplicates, texts, args.threshold)
    found = {i for i, m in enumerate(result) if m is not None}
    naive_per_1k = seconds / args.naive_size * 1000
    print(f"naive pairs  n={args.naive_size:>7,}: {seconds:7.2f} s = {naive_per_1k:.3f} s per 1k examples; "
          f"removed {len(found):,} (planted {len(planted):,}, found {len(found & planted):,})")
    lsh = {i for i, m in enumerate(near_duplicates(texts, args.threshold)) if m is not None}
    print(f"recall at {args.naive_size:,}: LSH removed {len(lsh & found):,} of the {len(found):,} exact-Jaccard "
          f"duplicates = {len(lsh & found) / max(1, len(found)):.3f} (goal >= 0.96)")
    if args.naive_size in per_1k:
        print(f"speedup of LSH over naive at {args.naive_size:,}: {naive_per_1k / per_1k[args.naive_size]:.1f}x")


if __name__ == "__main__":
    main()
