"""The GPU suite: throughput against the plain stack and issue 14's GPU checks, as one JSON document.

    bench/gpu_suite.sh                # on one H100/H200: <= 8 minutes
    bench/gpu_suite.sh --dry-run      # tiny shapes on CPU in seconds (tests/test_gpu_suite.py runs it)

Every check fails soft: its error goes into the JSON under its name and the other checks still run. The JSON is
printed at the end and written to $OUT/gpu_suite.json when $OUT is set (and after each check, so a run stopped by a
time limit keeps what it measured).

Checks (sizes for the GPU run; --dry-run shrinks them):
- train: LoRA training tokens/s of `underdog train` against a plain transformers + PEFT loop, same process, same
  random-weight Llama-3.2-1B shape (built from a config), 8 x 1024 tokens, r=16 on all linear layers, no dropout;
  peak memory of both, and the memory estimate's error against underdog's `max_memory_allocated()`;
- liger: `train.liger: on` (Liger's Triton kernels through TRL's `use_liger_kernel`) against plain, same shape and
  rows: tokens/s and peak memory of each (skipped without a GPU or the liger-kernel package);
- two_runs: `torch.cuda.memory_allocated()` after each of two runs in one process (should fall back to ~0), and
  the estimate's error with the default lora_dropout 0.05;
- generate: answer generation tokens/s of underdog's local backend against plain `model.generate` (batch 64,
  128-token prompts, 256 new tokens, greedy);
- judge_precision: the local judge's option-scoring verdicts (A / B / tie) in bf16 against fp32 on 50 pairs, with
  the embedded SmolLM2 (real weights);
- serve_oom_stream: a streamed request to `underdog serve` forced out of memory (a per-process memory cap): does
  the stream end, and how fast;
- flatten_two_gpus (only with > 1 GPU): the first-step loss of a flattened run with 2 GPUs visible (pinned to
  one: no DataParallel) against 1 visible GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

SHAPES = {
    "1B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GIB = 2**30


class Suite:
    """Runs checks one by one, records each result or error, writes the JSON as it goes."""

    def __init__(self, dry_run: bool) -> None:
        import torch

        self.dry = dry_run
        self.device = "cpu" if dry_run or not torch.cuda.is_available() else "cuda:0"
        self.cuda = self.device.startswith("cuda")
        self.size = dict(shape="tiny", batch=2, seq=64, steps=2, gen_batch=2, prompt=16, new=8, pairs=3) \
            if dry_run else dict(shape="1B", batch=8, seq=1024, steps=8, gen_batch=64, prompt=128, new=256, pairs=50)
        self.results: dict[str, Any] = {"dry_run": dry_run, "device": self.device, "checks": {}}
        self.work = Path(tempfile.mkdtemp(prefix="underdog-gpu-suite-"))
        self.shared: dict[str, Any] = {}

    def check(self, name: str, fn: Any) -> None:
        start = time.time()
        try:
            result = {"ok": True, **fn()}
        except Exception as exc:  # noqa: BLE001 - a failing check is reported, the others still run
            result = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).strip()[:500]}",
                      "where": traceback.format_exc(limit=-3).splitlines()[-3:]}
        result["seconds"] = round(time.time() - start, 1)
        self.results["checks"][name] = result
        self.release()
        self.write()

    def release(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def write(self) -> None:
        out = os.environ.get("OUT")
        if out:
            Path(out, "gpu_suite.json").write_text(json.dumps(self.results, indent=1))

    def synchronize(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()


# -- setup -------------------------------------------------------------------------------------------------------
def environment(suite: Suite) -> dict[str, Any]:
    import importlib.metadata

    import peft
    import torch
    import transformers
    import trl

    try:
        liger_version = importlib.metadata.version("liger-kernel")
    except importlib.metadata.PackageNotFoundError:
        liger_version = None
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
           "trl": trl.__version__, "liger_kernel": liger_version,
           "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if suite.cuda:
        out["gpu"] = torch.cuda.get_device_name(0)
        out["capability"] = list(torch.cuda.get_device_capability(0))
    return out


def random_model_dir(suite: Suite) -> Path:
    """A random-weight Llama of the suite's shape, saved with the embedded SmolLM2 tokenizer (ids < 49152 fit
    any of the shapes' vocabularies)."""
    if "model_dir" in suite.shared:
        return suite.shared["model_dir"]
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from underdog.llm.local import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    config = LlamaConfig(**SHAPES[suite.size["shape"]], max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(suite.device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if suite.cuda else torch.float32)
    folder = suite.work / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    suite.shared["model_dir"] = folder
    return folder


def project_with_data(suite: Suite) -> Any:
    """A project whose student is the random model and whose dataset `long` has rows of about `seq` tokens."""
    if "project" in suite.shared:
        return suite.shared["project"]
    import random

    import yaml

    from underdog.data.dataset import Example, save_dataset
    from underdog.project import Project, init_project

    root = suite.work / "project"
    init_project("GPU suite", root)
    config = yaml.safe_load((root / "underdog.yaml").read_text())
    config["models"]["student"]["model"] = str(random_model_dir(suite))
    (root / "underdog.yaml").write_text(yaml.safe_dump(config))
    rng = random.Random(0)
    words = ["permit", "office", "county", "form", "fee", "deadline", "river", "school", "road", "water", "fire",
             "license", "tax", "vote"]
    n_words = suite.size["seq"]  # >= 1 token a word: every row is cut to exactly `seq` tokens, as the plain rows
    rows = [Example([{"role": "user", "content": "Tell me about the county."},
                     {"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(n_words))}])
            for _ in range(suite.size["batch"] * (suite.size["steps"] + 4))]
    save_dataset(root, "long", rows)
    suite.shared["project"] = Project(root)
    return suite.shared["project"]


# -- training ----------------------------------------------------------------------------------------------------
def plain_training(suite: Suite) -> dict[str, Any]:
    """The plain stack: transformers + PEFT, a hand-written loop (as ../shared/reference/gpu_baseline.py)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if suite.cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(random_model_dir(suite), dtype=dtype,
                                                 attn_implementation="sdpa").to(suite.device)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    b, s = suite.size["batch"], suite.size["seq"]
    x = torch.randint(0, 49152, (b, s), device=suite.device)
    reset_peak(suite)

    def step() -> None:
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    suite.synchronize()
    start = time.time()
    for _ in range(suite.size["steps"]):
        step()
    suite.synchronize()
    seconds = (time.time() - start) / suite.size["steps"]
    return {"tokens_per_s": round(b * s / seconds), "step_s": round(seconds, 4), "peak_gib": peak_gib(suite)}


def StepTimer(suite: Suite, skip: int) -> Any:  # noqa: N802
    """A TrainerCallback timing the steps after the first `skip` (warm-up) ones."""
    from transformers import TrainerCallback

    class _Timer(TrainerCallback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.steps = 0
            self.seconds = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == skip:
                suite.synchronize()
                self.start = time.time()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if self.start is not None:
                suite.synchronize()
                self.steps = state.global_step - skip
                self.seconds = time.time() - self.start

    return _Timer()


def underdog_training(suite: Suite, run_id: str, steps: int, lora_dropout: float = 0.0,
                      liger: str = "off") -> dict[str, Any]:
    """`underdog.train.train` on the random model: timed steps after 2 warm-up ones, peak memory, estimate."""
    from transformers import AutoTokenizer

    from underdog.data.dataset import load_dataset
    from underdog.train import train

    project = project_with_data(suite)
    tokenizer = AutoTokenizer.from_pretrained(random_model_dir(suite))
    lengths = [min(suite.size["seq"], len(tokenizer.apply_chat_template(e.messages, return_dict=True)["input_ids"]))
               for e in load_dataset(project.root, "long")]  # the rows TRL trains on: the template, truncated
    timer = StepTimer(suite, skip=2)
    reset_peak(suite)
    hp = {"epoch": 1, "max_steps": steps + 2, "per_device_train_batch_size": suite.size["batch"],
          "max_input_length": suite.size["seq"], "lora_r": 16, "lora_alpha": 32, "validation_split_ratio": 0.0,
          "save_steps": 10_000, "logging_steps": 1, "device": suite.device, "lora_dropout": lora_dropout,
          "liger": liger}
    run = train(project, "long", hp, run_id=run_id, callbacks=[timer])
    mean_len = sum(lengths) / len(lengths)
    out = {"tokens_per_s": round(suite.size["batch"] * mean_len * timer.steps / timer.seconds) if timer.seconds
           else None, "mean_row_tokens": round(mean_len, 1), "peak_gib": peak_gib(suite),
           "estimate_gib": run.memory_estimate_gb, "batching": run.metrics.get("batching"),
           "padding_share": run.metrics.get("padding_share")}
    if out["peak_gib"]:
        out["estimate_error"] = round((run.memory_estimate_gb - out["peak_gib"]) / out["peak_gib"], 3)
    return out


def train_check(suite: Suite) -> dict[str, Any]:
    plain = plain_training(suite)
    suite.release()
    ours = underdog_training(suite, "suite-train", suite.size["steps"])  # lora_dropout 0, as the plain loop
    ratio = round(ours["tokens_per_s"] / plain["tokens_per_s"], 3) if ours["tokens_per_s"] else None
    return {"plain": plain, "underdog": ours, "ratio": ratio,
            "note": "both: batch x seq real tokens a step, lora_dropout 0; underdog computes the loss on the "
                    "assistant tokens only and trains with bf16 autocast and fp32 LoRA weights"}


def liger_check(suite: Suite) -> dict[str, Any]:
    """`train.liger: on` (Liger's Triton kernels: RMSNorm, RoPE, SwiGLU) against plain, same shape and rows: tokens/s
    and peak memory of each; needs a CUDA GPU and the liger-kernel package (`pip install liger-kernel`)."""
    import importlib.util

    if not suite.cuda or importlib.util.find_spec("liger_kernel") is None:
        return {"skipped": "needs a CUDA GPU and liger-kernel (pip install liger-kernel)"}
    plain = underdog_training(suite, "suite-liger-off", suite.size["steps"], liger="off")
    suite.release()
    fused = underdog_training(suite, "suite-liger-on", suite.size["steps"], liger="on")
    ratio = round(fused["tokens_per_s"] / plain["tokens_per_s"], 3) if fused["tokens_per_s"] else None
    return {"plain": plain, "liger": fused, "ratio": ratio,
            "peak_saved_gib": round(plain["peak_gib"] - fused["peak_gib"], 2) if plain["peak_gib"] else None}


def two_runs_check(suite: Suite) -> dict[str, Any]:
    """memory_allocated after each of two runs in one process (the first run's model must be gone); these runs
    use the default lora_dropout 0.05, so their peaks check the estimate's dropout term."""
    after, runs = [], []
    for i in range(2):
        runs.append(underdog_training(suite, f"suite-twice-{i}", 1, lora_dropout=0.05))
        after.append(allocated_gib(suite))
    return {"allocated_gib_after_each": after, "freed": all(a is None or a < 0.5 for a in after),
            "peak_gib": runs[0]["peak_gib"], "estimate_gib": runs[0]["estimate_gib"],
            "estimate_error": runs[0].get("estimate_error")}


# -- generation and judging -------------------------------------------------------------------------------------
def generate_check(suite: Suite) -> dict[str, Any]:
    import torch

    from underdog.config import GenerationParams
    from underdog.llm.local import generate, load_model

    loaded = load_model(str(random_model_dir(suite)), None, None if suite.cuda else "cpu")  # the copy serve uses
    size = suite.size
    # prompts of about `prompt` tokens through the chat template, the same for both
    question = " ".join(["county permit fee"] * max(1, (size["prompt"] - 20) // 3))
    batch = [[{"role": "user", "content": f"{i} {question}"}] for i in range(size["gen_batch"])]
    params = GenerationParams(temperature=0.0, max_tokens=size["new"])
    generate(loaded, batch[:2], GenerationParams(temperature=0.0, max_tokens=4))  # warm-up
    suite.synchronize()
    start = time.time()
    replies = generate(loaded, batch, params)
    suite.synchronize()
    ours_s = time.time() - start
    ours_tokens = sum(r.output_tokens for r in replies)

    tok = loaded.tokenizer
    prompts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
               for m in batch]
    inputs = tok.pad({"input_ids": prompts}, return_tensors="pt").to(loaded.model.device)
    suite.synchronize()
    start = time.time()
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, max_new_tokens=size["new"], do_sample=False,
                                    pad_token_id=tok.pad_token_id)
    suite.synchronize()
    plain_s = time.time() - start
    new = out[:, inputs["input_ids"].shape[1]:]
    plain_tokens = int(sum(next((i + 1 for i, t in enumerate(row.tolist()) if t == tok.eos_token_id), len(row))
                           for row in new))
    return {"underdog_tokens_per_s": round(ours_tokens / ours_s), "plain_tokens_per_s": round(plain_tokens / plain_s),
            "ratio": round((ours_tokens / ours_s) / (plain_tokens / plain_s), 3),
            "new_tokens": [ours_tokens, plain_tokens], "batch": size["gen_batch"]}


def judge_precision_check(suite: Suite) -> dict[str, Any]:
    """Option scoring (the local judge's verdicts) with the weights in bf16 against fp32, on the same pairs."""
    import copy
    import random
    import threading as th

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from underdog.llm.local import Base, LoadedModel, embedded_model_dir, score_options

    path = random_model_dir(suite) if suite.dry else embedded_model_dir()  # the dry run checks the plumbing only
    tok = AutoTokenizer.from_pretrained(path)
    fp32 = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(suite.device).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    rng = random.Random(0)
    facts = ["The permit fee is $40.", "Forms go to the county clerk.", "The deadline is March 1.",
             "Renewals take 10 days.", "The office opens at 9 am.", "Fees are waived for seniors."]
    verdicts: dict[str, list[str]] = {"fp32": [], "bf16": []}
    gaps = []
    for _ in range(suite.size["pairs"]):
        a, b = rng.sample(facts, 2)
        messages = [{"role": "system", "content": "You compare two answers. Reply A, B or tie."},
                    {"role": "user", "content": f"Question: what should I know about permits?\n\nAnswer A: {a}\n\n"
                                                f"Answer B: {b}\n\nWhich answer is better?"}]
        scores = {}
        for name, model in (("fp32", fp32), ("bf16", bf16)):
            loaded = LoadedModel(Base(model, tok, suite.device, th.Lock()), tok)
            scores[name] = score_options(loaded, messages, ["A", "B", "tie"])
            verdicts[name].append(["A", "B", "tie"][max(range(3), key=scores[name].__getitem__)])
        gaps.append(max(abs(x - y) for x, y in zip(scores["fp32"], scores["bf16"], strict=True)))
    agree = sum(x == y for x, y in zip(verdicts["fp32"], verdicts["bf16"], strict=True))
    return {"pairs": len(gaps), "agreement": round(agree / len(gaps), 3), "max_logprob_diff": round(max(gaps), 4),
            "verdicts_fp32": "".join(v[0] for v in verdicts["fp32"])}


# -- serving ------------------------------------------------------------------------------------------------------
def serve_oom_check(suite: Suite) -> dict[str, Any]:
    """Stream from `underdog serve` while generation runs out of memory: the stream must end (no hang)."""
    import openai
    import torch

    from underdog.config import ModelSpec
    from underdog.serve import create_app
    from underdog.testing import ServerThread

    spec = ModelSpec(provider="local", model=str(random_model_dir(suite)), device=None if suite.cuda else "cpu")
    forced = False
    if suite.cuda:
        from underdog.llm.local import load_model

        load_model(spec.model, None, spec.device)  # the weights first, then a cap just above what they hold
        cap = (torch.cuda.memory_allocated() + 16 * 2**20) / torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(cap, 1.0))
        forced = True
    long_prompt = " ".join(["county"] * (3000 if suite.cuda else 20))
    outcome: dict[str, Any] = {"oom_forced": forced}
    try:
        with ServerThread(create_app(spec, served_name="student")) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=60, max_retries=0)
            start = time.time()
            chunks, finish = 0, None
            result: dict[str, Any] = {}

            def consume() -> None:
                nonlocal chunks, finish
                try:
                    stream = client.chat.completions.create(
                        model="student", stream=True, max_tokens=512 if suite.cuda else 4,
                        messages=[{"role": "user", "content": long_prompt}])
                    for chunk in stream:
                        chunks += 1
                        finish = chunk.choices[0].finish_reason if chunk.choices else finish
                except Exception as exc:  # noqa: BLE001 - an error reply is a correct ending
                    result["client_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"

            reader = threading.Thread(target=consume, daemon=True)
            reader.start()
            reader.join(timeout=90)
            outcome.update(ended=not reader.is_alive(), seconds=round(time.time() - start, 1), chunks=chunks,
                           finish_reason=finish, **result)
    finally:
        if forced:
            torch.cuda.set_per_process_memory_fraction(1.0)
    return outcome


# -- several GPUs -------------------------------------------------------------------------------------------------
def flatten_two_gpus_check(suite: Suite) -> dict[str, Any]:
    """The first-step loss of a flattened run with 2 GPUs visible against 1 (each in a fresh process)."""
    import torch

    if not suite.cuda or torch.cuda.device_count() < 2:
        return {"skipped": "needs 2 GPUs"}
    project = project_with_data(suite)
    losses = {}
    for name, visible in (("one_gpu", "0"), ("two_gpus", "0,1")):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
        cmd = [sys.executable, "-c", "from underdog.cli import main; main()", "-C", str(project.root), "train",
               "--dataset", "long", "--run-id", f"suite-flat-{name}", "epoch=1", "max_steps=1", "packing=flatten",
               f"per_device_train_batch_size={suite.size['batch']}", "validation_split_ratio=0"]
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=240)
        manifest = json.loads((project.root / "runs" / f"suite-flat-{name}" / "manifest.json").read_text())
        losses[name] = manifest["metrics"]["first_train_loss"]
    return {**losses, "equal": abs(losses["one_gpu"] - losses["two_gpus"]) < 1e-2 * abs(losses["one_gpu"])}


# -- helpers ------------------------------------------------------------------------------------------------------
def reset_peak(suite: Suite) -> None:
    import torch

    if suite.cuda:
        torch.cuda.reset_peak_memory_stats()


def peak_gib(suite: Suite) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / GIB, 2) if suite.cuda else None


def allocated_gib(suite: Suite) -> float | None:
    import torch

    return round(torch.cuda.memory_allocated() / GIB, 3) if suite.cuda else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU: checks the plumbing in seconds")
    parser.add_argument("--only", nargs="*", help="run only these checks")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    suite = Suite(args.dry_run)
    start = time.time()
    checks = {"environment": environment, "train": train_check, "liger": liger_check, "two_runs": two_runs_check,
              "generate": generate_check, "judge_precision": judge_precision_check,
              "serve_oom_stream": serve_oom_check, "flatten_two_gpus": flatten_two_gpus_check}
    with contextlib.redirect_stdout(sys.stderr):  # progress bars and logs: stdout carries the JSON alone
        for name, fn in checks.items():
            if not args.only or name in args.only or name == "environment":
                suite.check(name, lambda fn=fn: fn(suite))
    suite.results["total_seconds"] = round(time.time() - start, 1)
    suite.write()
    print(json.dumps(suite.results, indent=1))


if __name__ == "__main__":
    main()
