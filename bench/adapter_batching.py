"""Answering one eval set with several adapters of one base: one batch per adapter vs one mixed-adapter batch.

    .venv/bin/python bench/adapter_batching.py [--model smollm2-135m] [--questions 8] [--max-tokens 16]

Random LoRA adapters (all projection layers, bench/adapter_memory.py's) answer the same questions greedily
through `LLM(spec with adapter)` and the local backend, each run in a fresh child process (its own peak RSS):
- separate (the baseline; what underdog did before its shared queue, and what a caller answering adapter after
  adapter still gets): one `LLM.batch` per adapter, one `generate` call per adapter;
- mixed: every adapter's requests at once (`asyncio.gather` of their `abatch`), which the backend's shared queue
  for the base model turns into one mixed-adapter batch (PEFT `adapter_names`).
Prints peak RSS (MiB; after loading, and at the end), answers/s, whether the mixed answers equal the separate
ones, and the ratios mixed / separate at 4 adapters. Loading is not timed (one short call per adapter first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

from adapter_memory import QUESTIONS, make_adapters, measure


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One measurement: load, answer, print JSON with peak RSS, answers/s and the answers."""
    from underdog.config import ModelSpec
    from underdog.llm import LLM

    adapters, questions = json.loads(args.adapters), QUESTIONS[: args.questions]
    llms = [LLM(ModelSpec(model=args.model, adapter=a, device="cpu", batch_size=len(questions) * len(adapters)))
            for a in adapters]
    for llm in llms:
        llm.chat("hi", temperature=0.0, max_tokens=1)  # base and adapter loaded before the clock starts
    loaded_mib = _peak_mib()
    params = {"temperature": 0.0, "max_tokens": args.max_tokens}
    start = time.perf_counter()
    if args.child == "separate":
        replies = [llm.batch(questions, **params) for llm in llms]
    else:
        async def together() -> list:
            return await asyncio.gather(*(llm.abatch(questions, **params) for llm in llms))

        replies = llms[0].runtime.run(together())
    seconds = time.perf_counter() - start
    answers = [[r.text for r in rows] for rows in replies]
    print(json.dumps({"loaded_mib": loaded_mib, "peak_mib": _peak_mib(),
                      "answers_per_s": sum(map(len, answers)) / seconds, "answers": answers}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--child")
    parser.add_argument("--adapters")
    args = parser.parse_args()
    if args.child:
        return child(args)
    from underdog.llm.local import resolve_model_path

    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(resolve_model_path(args.model), Path(tmp), 4)
        runs = [("separate", 1), ("separate", 4), ("mixed", 4)]
        results = {(kind, n): measure(kind, adapters[:n], args, __file__) for kind, n in runs}
    print(f"{'run':<22} {'loaded MiB':>11} {'peak MiB':>9} {'answers/s':>10}")
    for (kind, n), r in results.items():
        print(f"{kind + f' x{n} adapters':<22} {r['loaded_mib']:>11.0f} {r['peak_mib']:>9.0f} "
              f"{r['answers_per_s']:>10.2f}")
    base, ours = results[("separate", 4)], results[("mixed", 4)]
    print(f"4 adapters, mixed / separate: peak memory {ours['peak_mib'] / base['peak_mib']:.2f}x, "
          f"answers/s {ours['answers_per_s'] / base['answers_per_s']:.2f}x; "
          f"same answers: {'yes' if ours['answers'] == base['answers'] else 'NO'}")
    one = results[("separate", 1)]
    print(f"separate, 4 adapters / 1: answers/s {base['answers_per_s'] / one['answers_per_s']:.2f}x")


if __name__ == "__main__":
    main()
