"""Memory and speed of answering with several adapters of one base model: underdog vs one copy per adapter.

    .venv/bin/python bench/adapter_memory.py [--model smollm2-135m] [--questions 8] [--max-tokens 16]

Four runs, each in a fresh child process so its peak RSS is its own: 1 and 4 LoRA adapters (random weights,
all projection layers), answering the same questions greedily with each adapter in turn.
- baseline: what a plain script (and underdog before its shared runtime) does: `PeftModel.from_pretrained` on a
  fresh copy of the base model for every adapter, all kept in memory;
- underdog: `LLM(spec with adapter).batch(...)` through the local backend, which attaches every adapter to one
  copy of the base.
Prints peak RSS (MiB) and answers/s of each, and the ratios underdog / baseline at 4 adapters. The peak includes
the Python, torch and transformers start-up (~400 MiB here), the same in both.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTIONS = ["What does a food truck permit cost?", "When is the property tax appeal deadline?",
             "Which office issues dog licences?", "How do I report a fallen tree?",
             "What form do I need for a building permit?", "How long is a parking permit valid?",
             "Where do I register to vote?", "Who inspects restaurants?"]


def make_adapters(model_dir: str, out: Path, count: int) -> list[str]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(count):
        torch.manual_seed(i)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.01)
        paths.append(str(out / f"adapter-{i}"))
        model.save_pretrained(paths[-1])
    return paths


def run_baseline(model_dir: str, adapters: list[str], questions: list[str], max_tokens: int) -> int:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    models = [PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), a).eval() for a in adapters]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
               for q in questions]
    inputs = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    answers = 0
    for model in models:
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        answers += len(questions)
    return answers


def run_underdog(model: str, adapters: list[str], questions: list[str], max_tokens: int) -> int:
    from underdog.config import ModelSpec
    from underdog.llm import LLM

    answers = 0
    for adapter in adapters:
        spec = ModelSpec(model=model, adapter=adapter, device="cpu", batch_size=len(questions))
        answers += len(LLM(spec).batch(questions, temperature=0.0, max_tokens=max_tokens))
    return answers


def child(args: argparse.Namespace) -> None:
    """One measurement: load, answer, print JSON with peak RSS and answers/s."""
    from underdog.llm.local import resolve_model_path

    adapters = json.loads(args.adapters)
    start = time.perf_counter()
    if args.child == "baseline":
        answers = run_baseline(resolve_model_path(args.model), adapters, QUESTIONS[: args.questions], args.max_tokens)
    else:
        answers = run_underdog(args.model, adapters, QUESTIONS[: args.questions], args.max_tokens)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mib": peak_mib, "answers_per_s": answers / seconds}))


def measure(kind: str, adapters: list[str], args: argparse.Namespace, script: str = __file__) -> dict:
    """Run `script --child kind` in a process of its own (peak memory per run) and return its JSON line."""
    command = [sys.executable, script, "--child", kind, "--adapters", json.dumps(adapters), "--model", args.model,
               "--questions", str(args.questions), "--max-tokens", str(args.max_tokens)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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
        results = {(kind, n): measure(kind, adapters[:n], args) for n in (1, 4) for kind in ("baseline", "underdog")}
    print(f"{'run':<22} {'peak RSS MiB':>13} {'answers/s':>10}")
    for (kind, n), r in results.items():
        print(f"{kind + f' x{n} adapters':<22} {r['peak_mib']:>13.0f} {r['answers_per_s']:>10.2f}")
    base, ours = results[("baseline", 4)], results[("underdog", 4)]
    print(f"4 adapters, underdog / baseline: peak memory {ours['peak_mib'] / base['peak_mib']:.2f}x, "
          f"answers/s {ours['answers_per_s'] / base['answers_per_s']:.2f}x")


if __name__ == "__main__":
    main()
