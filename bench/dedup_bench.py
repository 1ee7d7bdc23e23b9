"""Near-duplicate removal: MinHash LSH (`underdog.data.dedup.near_duplicates`) vs a naive all-pairs baseline.

    .venv/bin/python bench/dedup_bench.py [--sizes 10000 100000] [--naive-size 10000]

Synthetic questions (8-14 content words from a 20k-word vocabulary, in question templates), 10% of them planted
near-duplicates of an earlier one (one word swapped, words reordered or a filler word added). Prints seconds per
1k examples for each size (their ratio shows how close to linear the scaling is), the same for the naive
all-pairs baseline on the smaller size, the speedup, and how many planted duplicates each method found.
Each LSH size runs in a fresh process, which reports its peak RSS (resource.getrusage) with and without the input
texts, and the peak extrapolated linearly to 1M examples. Recall: the share of the exact-Jaccard (naive)
duplicates that LSH also removes, on the naive baseline's texts. Goal (issue 11): 1M in <= 1.5 GB, recall >= 0.96.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import time

from underdog.data.dedup import naive_near_duplicates, near_duplicates

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive-size", type=int, default=10_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()

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
