"""GPU correctness as plain logic on CPU (issue 14): no DataParallel, the device choice, memory freed between runs,
the memory check against free memory, precision by GPU generation, sweep slots under an inherited
CUDA_VISIBLE_DEVICES, FSDP's loading flags. The GPU-only halves are checks in bench/gpu_suite.sh."""

from __future__ import annotations

import gc
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from test_train import arithmetic, use_student
from underdog.config import TrainConfig
from underdog.data.dataset import save_dataset
from underdog.errors import ConfigError, UnderdogError
from underdog.train import devices
from underdog.train.memory import GIB, configured_limit_gib, device_memory_gb, estimate, model_shape

FULL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the 2 cores are shared


def _tiny_trainer(tiny_llama_dir: Path, tmp_path: Path, n_gpu: int, pin: bool) -> Any:
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    from underdog.train.arguments import trainer_arguments
    from underdog.train.sft import load_student, lora_config

    cfg = TrainConfig(validation_split_ratio=0.0)
    model, _ = load_student(str(tiny_llama_dir), cfg, "cpu")
    args = trainer_arguments(TrainingArguments, cfg, "cpu", tmp_path, has_eval=False)
    args.device  # noqa: B018 - resolve the device, as the Trainer does
    args._n_gpu = n_gpu  # what TrainingArguments counts on a machine with `n_gpu` visible GPUs
    if pin:
        devices.pin_one_device(args, "cpu")
    return Trainer(model=get_peft_model(model, lora_config(cfg)), args=args)


@pytest.mark.slow
def test_no_data_parallel_over_several_gpus(tiny_llama_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulated 2-GPU machine: the Trainer wraps the model in nn.DataParallel unless the run is pinned."""
    bare = _tiny_trainer(tiny_llama_dir, tmp_path / "bare", n_gpu=2, pin=False)
    assert isinstance(bare._wrap_model(bare.model), torch.nn.DataParallel)  # the hazard, with the real Trainer
    pinned = _tiny_trainer(tiny_llama_dir, tmp_path / "pinned", n_gpu=2, pin=True)
    assert pinned.args.n_gpu == 1 and not isinstance(pinned._wrap_model(pinned.model), torch.nn.DataParallel)
    # under accelerate launch the process group owns the devices: nothing is overridden
    launched = _tiny_trainer(tiny_llama_dir, tmp_path / "launched", n_gpu=2, pin=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    devices.pin_one_device(launched.args, "cuda:0")
    assert launched.args.n_gpu == 2


@pytest.mark.slow
def test_the_sft_trainer_is_pinned_to_the_run_device(tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sft_trainer pins its arguments to the run's device before TRL's SFTTrainer sees them."""
    from underdog.train import sft
    from underdog.train.data import build_splits

    seen: list[str] = []
    monkeypatch.setattr(sft, "pin_one_device", lambda args, device: seen.append(device))
    cfg = TrainConfig(validation_split_ratio=0.0)
    model, tok = sft.load_student(str(tiny_llama_dir), cfg, "cpu")
    splits = build_splits(arithmetic(2), validation_split_ratio=0.0, seed=0)
    sft.sft_trainer(model, tok, splits, cfg, "cpu", Path(tempfile.mkdtemp()), [], 64)
    assert seen == ["cpu"]


def test_training_device_is_explicit_and_the_memory_check_reads_the_same_gpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert devices.training_device("cpu") == "cpu"
    assert devices.training_device("cuda") == "cuda:0" and devices.training_device("cuda:1") == "cuda:1"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert devices.training_device("cuda") == "cuda:3"  # under a launcher: the process's own GPU
    monkeypatch.delenv("LOCAL_RANK")
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir="unused", use_cpu=True, report_to=[])
    current: list[Any] = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    devices.pin_one_device(args, "cuda:1")  # what the Trainer and accelerate then place the model on
    assert args.device == torch.device("cuda", 1) and current == [torch.device("cuda", 1)] and args.n_gpu <= 1
    asked: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: asked.append(i) or (10 * GIB, 80 * GIB))
    assert device_memory_gb("cuda:1") == pytest.approx(9.5) and asked == [1]  # free memory, less 5%


def test_memory_freed_after_each_run_in_one_process(project_dir: Path, tiny_llama_dir: Path) -> None:
    """With bf16, accelerate's wrapped forward makes a reference cycle that keeps the model alive after train()
    (reproduced here on CPU with precision=bf16); the recipe collects it, after a success and after a failure."""
    from transformers import TrainerCallback

    from underdog.train import train

    class Watch(TrainerCallback):
        def __init__(self, fail: bool = False) -> None:
            self.ref: Any = None
            self.fail = fail

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            self.ref = weakref.ref(model)
            if self.fail:
                raise RuntimeError("planted failure")

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(8))
    hp = {"epoch": 1, "max_steps": 2, "precision": "bf16", "validation_split_ratio": 0.0}
    gc.disable()  # the cycle collector must not run by chance: the recipe has to free the model itself
    try:
        ok, failing = Watch(), Watch(fail=True)
        train(project, "arith", hp, callbacks=[ok])
        assert ok.ref is not None and ok.ref() is None
        with pytest.raises(UnderdogError, match="planted failure"):
            train(project, "arith", hp, callbacks=[failing])
        assert failing.ref is not None and failing.ref() is None
    finally:
        gc.enable()


def test_memory_estimate_counts_dropout_fsdp_shards_and_gb(tiny_llama_dir: Path) -> None:
    from transformers import LlamaConfig

    shape = model_shape(LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256))
    plain = estimate(shape, lora_r=16, target_modules=FULL, batch_size=4, seq_len=1024)
    dropout = estimate(shape, lora_r=16, target_modules=FULL, batch_size=4, seq_len=1024, lora_dropout=0.05)
    assert dropout.dropout / GIB == pytest.approx(4.75, abs=0.05)  # one mask byte per adapted input element
    assert dropout.total_gb - plain.total_gb == pytest.approx(dropout.dropout / GIB)
    ckpt = estimate(shape, lora_r=16, target_modules=FULL, batch_size=4, seq_len=1024, lora_dropout=0.05,
                    gradient_checkpointing=True)
    assert ckpt.dropout == pytest.approx(dropout.dropout / 32)  # one layer at a time
    sharded = estimate(shape, lora_r=16, target_modules=FULL, batch_size=4, seq_len=1024, shards=4)
    assert sharded.weights == pytest.approx(plain.weights / 4) and sharded.activations == plain.activations
    assert configured_limit_gib(10) == pytest.approx(9.313, abs=1e-3)  # device_memory_gb is GB, compared in GiB


def test_fsdp_shards_from_the_launcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from underdog.train.launch import accelerate_command
    from underdog.train.lora import fsdp_shards

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert fsdp_shards() == 1  # DDP: every process holds the full weights
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert fsdp_shards() == 4
    cmd = accelerate_command(Path("p"), "v1", "r", [], processes=4, fsdp=True, mixed_precision="fp16")
    assert cmd[cmd.index("--fsdp_cpu_ram_efficient_loading") + 1] == "true"
    assert cmd[cmd.index("--fsdp_sync_module_states") + 1] == "true"
    assert cmd[cmd.index("--mixed_precision") + 1] == "fp16"


def test_precision_and_attention_by_gpu_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    capability = {"value": (7, 5)}  # T4
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability["value"])
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: object())  # flash-attn "installed"
    assert devices.precision("cuda:0") == "fp16" and devices.attention("cuda:0") == "sdpa"
    assert devices.precision("cuda:0", "fp32") == "fp32"
    capability["value"] = (8, 0)  # A100
    assert devices.precision("cuda:0") == "bf16" and devices.attention("cuda:0") == "flash_attention_2"
    assert devices.precision("cpu") == "fp32" and devices.attention("cpu") == "sdpa"
    assert devices.precision("cpu", "bf16") == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        devices.precision("cpu", "fp16")


@pytest.mark.slow
def test_precision_reaches_the_trainer_and_the_weights(tiny_llama_dir: Path) -> None:
    from underdog.train import sft
    from underdog.train.data import build_splits

    splits = build_splits(arithmetic(2), validation_split_ratio=0.0, seed=0)
    for mode, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        cfg = TrainConfig(precision=mode)
        model, tok = sft.load_student(str(tiny_llama_dir), cfg, "cpu")
        trainer, _ = sft.sft_trainer(model, tok, splits, cfg, "cpu", Path(tempfile.mkdtemp()), [], 64)
        assert (trainer.args.bf16, trainer.args.fp16) == (mode == "bf16", False)
        assert not trainer.args.gradient_checkpointing  # TRL's default (on) is not the run's
        frozen = next(p for n, p in trainer.model.named_parameters() if "lora" not in n)
        lora = next(p for n, p in trainer.model.named_parameters() if "lora_A" in n)
        assert frozen.dtype == dtype and lora.dtype == torch.float32  # adapters train in fp32


def test_sweep_slots_remap_through_an_inherited_cuda_visible_devices(project_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from underdog.project import Project
    from underdog.train import executors

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices.slot_visible_devices("cuda:1") == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # SLURM / Kubernetes gave this job GPUs 2 and 3
    assert [devices.slot_visible_devices(f"cuda:{i}") for i in (0, 1)] == ["2", "3"]
    with pytest.raises(ConfigError, match="beyond CUDA_VISIBLE_DEVICES=2,3"):
        devices.slot_visible_devices("cuda:2")
    seen: list[str] = []

    def fake_run(cmd: list[str], env: dict[str, str], **kwargs: Any) -> Any:
        seen.append(env["CUDA_VISIBLE_DEVICES"])
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(executors.subprocess, "run", fake_run)
    plan = executors.RunPlan(dataset="v1", run_id="s-000", sweep="s")
    project = Project(project_dir)
    executors.LocalExecutor(project, executors.Resources(slots=["cuda:0", "cuda:1"])).run_in_subprocess(plan, "cuda:1")
    assert seen == ["3"]
