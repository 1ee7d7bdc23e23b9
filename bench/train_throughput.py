"""Training throughput: real (non-padding) tokens/s of `underdog train`, this tree against another checkout.

    .venv/bin/python bench/train_throughput.py [--model smollm2-135m] [--examples 64] [--batch 4] [--device cpu]
        [--threads 1] [--repeats 2] [--packing auto] [--baseline-src ../main-before/src]

Each pass trains one run with `underdog.train.train` in a fresh process (`PYTHONPATH=<src>`), on the same rows:
Q&A pairs with answers of 10 to 300 words (like generated SFT data), one epoch, LoRA r=8 on all linear layers,
no evaluation. With `--baseline-src` (e.g. a `git archive` of main's src from before the move to TRL's
SFTTrainer, whose labels and batches were hand-written) the two trees alternate (ABBA...) so drift in a shared
machine's load cancels, and the ratio of the medians is printed (this / baseline). The numbers are what each run's
manifest records: real tokens / the Trainer's `train_runtime` (the training loop, not model loading), and the
share of computed positions that were padding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
WORDS = ["permit", "license", "county", "office", "form", "tax", "vote", "school", "road", "water", "fee",
         "renewal", "deadline", "appeal", "hearing", "zoning", "parcel", "inspection", "application", "resident"]


def examples(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """`n` conversations (question of 6-30 words, answer of 10-300), the same for every tree."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + "?"
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 300))) + "."
        out.append([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
    return out


def child(args: argparse.Namespace) -> None:
    """One run in this process (whichever underdog PYTHONPATH gives): print its tokens/s and padding as JSON."""
    import torch
    import yaml

    from underdog.data.dataset import Example, save_dataset
    from underdog.llm.local import pick_device, resolve_model_path
    from underdog.project import Project, init_project
    from underdog.train import train

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="underdog-bench-"))
    try:
        init_project("bench", tmp)
        config = yaml.safe_load((tmp / "underdog.yaml").read_text())
        config["models"]["student"]["model"] = resolve_model_path(args.model)
        (tmp / "underdog.yaml").write_text(yaml.safe_dump(config))
        save_dataset(tmp, "bench", [Example(m) for m in examples(args.examples)])
        hp = {"epoch": 1, "per_device_train_batch_size": args.batch, "validation_split_ratio": 0.0,
              "max_input_length": args.max_length, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
              "learning_rate": 1e-4, "save_steps": 10_000, "logging_steps": 10_000,
              "device": pick_device(args.device), "packing": args.packing}
        m = train(Project(tmp), "bench", hp).metrics
        print(json.dumps({"tokens_per_s": m["train_tokens_per_s"], "padding_share": m["padding_share"],
                          "batching": m["batching"], "steps": m["steps"], "examples": m["train_examples"]}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def one_pass(src: str, argv: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", *argv], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run with PYTHONPATH={src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--device", default=None)
    parser.add_argument("--packing", default="auto", choices=["auto", "flatten", "group", "off"])
    parser.add_argument("--repeats", type=int, default=2, help="passes of each tree, in alternating order")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--baseline-src", help="also run another checkout's src (e.g. main's before TRL)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    argv = [f"--model={args.model}", f"--examples={args.examples}", f"--batch={args.batch}",
            f"--max-length={args.max_length}", f"--packing={args.packing}", f"--threads={args.threads}"]
    argv += [f"--device={args.device}"] if args.device else []
    trees = {"this": str(SRC)} | ({"baseline": str(Path(args.baseline_src).resolve())} if args.baseline_src else {})
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for i in range(args.repeats):  # ABBA...: drift in the machine's load cancels out of the medians
        for name in (list(trees) if i % 2 == 0 else list(reversed(trees))):
            results[name].append(one_pass(trees[name], argv))
            r = results[name][-1]
            print(f"  pass {i + 1} {name:8s}: {r['tokens_per_s']:8.1f} real tokens/s, padding "
                  f"{r['padding_share']:.1%} ({r['batching']}, {r['steps']} steps)", flush=True)
    medians = {name: statistics.median(r["tokens_per_s"] for r in runs) for name, runs in results.items()}
    for name, value in medians.items():
        print(f"{name:8s} ({trees[name]}): {value:8.1f} real tokens/s (median of {args.repeats})")
    if args.baseline_src:
        print(f"ratio this / baseline: {medians['this'] / medians['baseline']:.3f}")


if __name__ == "__main__":
    main()
