"""Training throughput: real (non-padding) tokens/s of `underdog train` vs a plain HF Trainer + PEFT run.

    .venv/bin/python bench/train_throughput.py [--model smollm2-135m] [--examples 64] [--batch 4] [--device cpu]
                                               [--threads 1] [--repeats 2]

Both runs see the same rows (the student's chat template, assistant-only labels), the same LoRA (r=8, all
linear layers), batch size, learning rate and one epoch, in this process, one after the other. The baseline is
what a plain stack does: examples in random order, each batch padded to its longest row
(DataCollatorForSeq2Seq). `underdog train` uses its `packing` mode (default auto: length-grouped batches with
sdpa, padding-free flattened rows with flash-attn; `--packing flatten|group|off` to compare). Both times are the
Trainer's own `train_runtime` (the training loop, not model loading). The data are Q&A pairs with answers of 10
to 300 words, like generated SFT data. Prints the padding share of each, the real tokens/s of each and their ratio
(underdog / plain).
On a GPU the target is >= 1.5x with a padding share <= 5% (see ../shared/reference/gpu-baselines.md).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from pathlib import Path

import yaml

from underdog.config import TrainConfig
from underdog.data.dataset import Example, save_dataset
from underdog.llm.local import pick_device, resolve_model_path
from underdog.project import Project, init_project
from underdog.train.data import IGNORE, CountingCollator, build_splits, make_collator
from underdog.train.lora import setup_model, train, training_arguments

WORDS = ["permit", "license", "county", "office", "form", "tax", "vote", "school", "road", "water", "fee",
         "renewal", "deadline", "appeal", "hearing", "zoning", "parcel", "inspection", "application", "resident"]


def examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + "?"
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 300))) + "."
        out.append(Example([{"role": "user", "content": question}, {"role": "assistant", "content": answer}]))
    return out


def plain_stack(model_path: str, cfg: TrainConfig, device: str, rows: list, out: Path) -> tuple[float, float]:
    """HF Trainer + PEFT, padded batches: (real tokens/s, padding share)."""
    from datasets import Dataset
    from transformers import Trainer

    cfg = cfg.model_copy(update={"packing": "off"})  # random batches, as the plain Trainer samples them
    model, tokenizer = setup_model(model_path, cfg, device)
    collator = CountingCollator(make_collator(tokenizer, "off"))
    args = training_arguments(cfg, device, out, len(rows), has_eval=False)
    args.save_strategy = "no"
    trainer = Trainer(model=model, args=args, data_collator=collator,
                      train_dataset=Dataset.from_list([r.to_dict() for r in rows]))
    result = trainer.train()
    return collator.real / result.metrics["train_runtime"], collator.padding_share


def underdog_stack(root: Path, cfg: dict) -> tuple[float, float]:
    """`underdog train` on the same data: (real tokens/s, padding share), as its manifest records them."""
    metrics = train(Project(root), "bench", cfg).metrics
    return metrics["train_tokens_per_s"], metrics["padding_share"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--device", default=None)
    parser.add_argument("--packing", default="auto", choices=["auto", "flatten", "group", "off"])
    parser.add_argument("--repeats", type=int, default=2, help="passes of each stack, in alternating order")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    device = pick_device(args.device)
    model_path = resolve_model_path(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="underdog-bench-"))
    try:
        init_project("bench", tmp)
        config = yaml.safe_load((tmp / "underdog.yaml").read_text())
        config["models"]["student"]["model"] = model_path
        (tmp / "underdog.yaml").write_text(yaml.safe_dump(config))
        data = examples(args.examples)
        save_dataset(tmp, "bench", data)
        hp = {"epoch": 1, "per_device_train_batch_size": args.batch, "validation_split_ratio": 0.0,
              "max_input_length": args.max_length, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
              "learning_rate": 1e-4, "save_steps": 10_000, "logging_steps": 10_000, "device": device,
              "packing": args.packing}
        cfg = TrainConfig(**hp)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path)
        rows = build_splits(tokenizer, data, max_length=args.max_length, validation_split_ratio=0.0, seed=0).train
        real_tokens = sum(len(r.input_ids) for r in rows)
        trained = sum(sum(label != IGNORE for label in r.labels) for r in rows)
        print(f"{args.model} on {device}: {len(rows)} examples, {real_tokens} real tokens "
              f"({trained} trained), batch {args.batch}")
        results: dict[str, list[float]] = {"plain": [], "underdog": []}
        pads: dict[str, float] = {}
        for i in range(args.repeats):  # alternate the order (ABBA...) so drift in a shared machine's load cancels
            order = ("plain", "underdog") if i % 2 == 0 else ("underdog", "plain")
            for name in order:
                if name == "plain":
                    tps, pads[name] = plain_stack(model_path, cfg, device, rows, tmp / f"plain-{i}")
                else:
                    tps, pads[name] = underdog_stack(tmp, hp)
                results[name].append(tps)
                print(f"  pass {i + 1} {name:8s}: {tps:8.1f} real tokens/s", flush=True)
        plain_tps, ours_tps = statistics.median(results["plain"]), statistics.median(results["underdog"])
        print(f"plain HF Trainer + PEFT (padded): {plain_tps:8.1f} real tokens/s, padding share {pads['plain']:.1%}")
        share = pads["underdog"]
        print(f"underdog train (packing={args.packing}): {ours_tps:8.1f} real tokens/s, padding share {share:.1%}")
        print(f"ratio underdog / plain: {ours_tps / plain_tps:.2f}x (medians of {args.repeats} pass(es) each)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
