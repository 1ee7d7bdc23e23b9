"""Shared fixtures: an isolated project folder, the embedded model, a tiny random Llama, loopback servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from underdog.testing import ServerThread, free_port  # noqa: F401 - re-exported for tests

REPO = Path(__file__).resolve().parents[1]
# Converted models are kept across test runs (and across CI steps) in one cache folder.
os.environ.setdefault("UNDERDOG_CACHE", str(REPO / ".cache" / "underdog"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download when a test imports litellm
CLI_WIDTH = 160  # every in-process CLI run renders at this width, whatever the terminal or the tmp path length


def invoke_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Run `underdog ARGS...` in-process (typer's CliRunner) at a fixed width; stdout and stderr together."""
    from underdog.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(CLI_WIDTH), **(env or {})},
                              input=input)


@pytest.fixture
def cli() -> Callable[..., Result]:
    """`cli("import", path)`: the shared way tests drive the command line (see `invoke_cli`)."""
    return invoke_cli


@pytest.fixture(autouse=True)
def own_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's models built outside a project run on a runtime of their own (loop, backends, requests in
    flight), closed after the test; loaded weights stay shared by the process (llm/local.py)."""
    from underdog.llm import runtime

    fresh = runtime.Runtime()
    monkeypatch.setattr(runtime, "_default", fresh)
    yield
    fresh.close()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """The CI box's 2 cores are shared: two torch threads fighting other jobs run ~5x slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project (default offline config) as the current folder."""
    from underdog.project import init_project

    root = tmp_path / "proj"
    init_project("US state and local government services", root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("UNDERDOG_PROJECT", raising=False)
    return root


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as safetensors (converted once, then cached)."""
    from underdog.llm.local import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer and chat template (fast to run/train)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def learnable_llama_dir(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """The tiny Llama with a wider initialisation. The shared fixture's 0.02-std tied embeddings cap its logits
    near uniform (loss stays ~10.2 whatever LoRA learns), which hides overfitting; this one can memorise."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("learnable-llama")
    config = LlamaConfig.from_pretrained(tiny_llama_dir)
    config.initializer_range = 0.15
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


@pytest.fixture
def serve_app() -> Iterator[type[ServerThread]]:
    yield ServerThread
