"""What stop strings cost a local generation: underdog's tail check against transformers' StopStringCriteria.

    .venv/bin/python bench/stop_strings.py [--model smollm2-135m] [--tokens 64] [--batch 4] [--repeats 3]

One process, one loaded model, greedy generation of `--tokens` tokens (no stop string ever matches, so every run
generates the same tokens) for a batch of `--batch` prompts:
- baseline: no stop strings;
- underdog: 4 stop strings of 64 characters (the most `underdog serve` accepts), checked by `llm/stops.py`;
- transformers: the same 4 strings through `generate(stop_strings=...)` (StopStringCriteria, what underdog used
  before), a new set each time as distinct requests bring (its cache keeps 8), and 300 short strings (the audit's
  stalling request, which `serve` now refuses).
Prints seconds (median of `--repeats`) and the ratio to the baseline measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from underdog.config import GenerationParams
from underdog.llm.local import generate, load_model

PROMPTS = ["What does a food truck permit cost?", "Where do I appeal a property tax bill?",
           "How do I renew a fishing license?", "Which office issues building permits?"]


def _stops(tag: str, count: int = 4, length: int = 64) -> list[str]:
    return [f"{tag}-{i}-".ljust(length, "~") for i in range(count)]


def _median(run: Callable[[int], object], repeats: int) -> float:
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    loaded = load_model(args.model, device="cpu")
    batch = [[{"role": "user", "content": p}] for p in (PROMPTS * args.batch)[: args.batch]]
    params = GenerationParams(temperature=0, max_tokens=args.tokens)
    inputs = loaded.tokenizer.apply_chat_template(batch, add_generation_prompt=True, padding=True,
                                                  return_tensors="pt", return_dict=True)

    def theirs(stop: list[str]) -> None:
        with torch.inference_mode():
            loaded.model.generate(**inputs, max_new_tokens=args.tokens, do_sample=False,
                                  pad_token_id=loaded.tokenizer.pad_token_id, stop_strings=stop,
                                  tokenizer=loaded.tokenizer)

    generate(loaded, batch, params)  # warm up
    rows = [
        ("baseline (no stop strings)", lambda i: generate(loaded, batch, params)),
        ("underdog: 4 x 64 characters", lambda i: generate(loaded, batch, params.model_copy(
            update={"stop": _stops(f"u{i}")}))),
        ("transformers: 4 x 64 characters", lambda i: theirs(_stops(f"t{i}"))),
        ("transformers: 300 x 8 characters", lambda i: theirs(_stops(f"m{i}", 300, 8))),
    ]
    print(f"{args.model}, batch {args.batch}, {args.tokens} tokens, median of {args.repeats}")
    base = None
    for label, run in rows:
        seconds = _median(run, args.repeats if "300" not in label else 1)
        base = base or seconds
        print(f"{label:<34} {seconds:8.2f} s  {seconds / base:6.2f}x baseline")


if __name__ == "__main__":
    main()
