"""One base model for many adapters: every adapter of a base is attached to one copy of it, and each view still
answers exactly like a separately loaded base + adapter (PEFT's own loading, compared token for token)."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import weakref
from pathlib import Path

import pytest
import torch

from underdog.config import ModelSpec
from underdog.errors import ConfigError, ModelError
from underdog.evaluate.answer import answer, answer_many
from underdog.evaluate.evalset import import_evalset
from underdog.llm import LLM, local
from underdog.llm.base import Reply
from underdog.llm.local import load_model, loaded_models, use_model
from underdog.llm.memory import BUDGET_ENV, budget_bytes, estimate_bytes, held_bytes, room_for_models
from underdog.project import Project, init_project

PROMPTS = ["What does a permit cost?", "hello", "Where is the county office?"]


def make_adapters(base_dir: Path, out: Path, count: int) -> list[Path]:
    """`count` LoRA adapters with random (non-zero) weights, so each changes the base model's answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(count):
        torch.manual_seed(100 + i)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(
            r=4 + 4 * (i % 2), lora_alpha=32, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
            lora_dropout=0.0))
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=1.0)
        paths.append(out / f"adapter-{i}")
        model.save_pretrained(paths[-1])
    return paths


def reference_answers(base_dir: Path, adapter: Path | None) -> list[str]:
    """Greedy answers of a fresh copy of the base (+ adapter) loaded by transformers/PEFT alone."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model = (PeftModel.from_pretrained(model, adapter) if adapter else model).eval()
    answers = []
    for prompt in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        answers.append(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers


@pytest.fixture(scope="module")
def own_base(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny Llama, so the adapters attached here stay out of other tests' loaded model."""
    import shutil

    return Path(shutil.copytree(tiny_llama_dir, tmp_path_factory.mktemp("base") / "tiny"))


@pytest.fixture(scope="module")
def adapters(own_base: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_adapters(own_base, tmp_path_factory.mktemp("adapters"), 4)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[list[str | None]]:
    """Filled as the local backend generates: the adapter of each row of each batch (the real generation runs)."""
    seen: list[list[str | None]] = []
    real_generate = local.generate

    def counted(views, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append([v.adapter for v in views] if isinstance(views, list) else [views.adapter])
        return real_generate(views, *args, **kwargs)

    monkeypatch.setattr(local, "generate", counted)
    return seen


def test_four_adapters_share_one_base_and_answer_like_their_own_copy(own_base: Path, adapters: list[Path]) -> None:
    tiny_llama_dir = own_base
    base = load_model(str(tiny_llama_dir), device="cpu")
    weights = sum(p.numel() for n, p in base.model.named_parameters() if "lora_" not in n)
    views = [load_model(str(tiny_llama_dir), str(a), "cpu") for a in adapters]
    assert all(v.base is base.base for v in views) and len({v.adapter for v in views}) == 4
    assert sum(p.numel() for n, p in base.model.named_parameters() if "lora_" not in n) == weights  # no copies

    answers = {}
    for adapter in [None, *adapters]:
        spec = ModelSpec(model=str(tiny_llama_dir), adapter=str(adapter) if adapter else None, device="cpu")
        got = [r.text for r in LLM(spec).batch(PROMPTS, temperature=0.0, max_tokens=6)]
        assert got == reference_answers(tiny_llama_dir, adapter), adapter
        answers[adapter] = tuple(got)
    assert len(set(answers.values())) == 5  # every adapter (and the base) answers differently


def test_scoring_uses_the_views_adapter(own_base: Path, adapters: list[Path]) -> None:
    tiny_llama_dir = own_base
    messages = [{"role": "user", "content": "Which is better, A or B?"}]
    scores = [LLM(ModelSpec(model=str(tiny_llama_dir), adapter=str(a), device="cpu")).score([messages], ["A", "B"])[0]
              for a in adapters[:2]]
    base = LLM(ModelSpec(model=str(tiny_llama_dir), device="cpu")).score([messages], ["A", "B"])[0]
    assert scores[0] != scores[1] and base not in scores


def test_requests_for_several_adapters_of_one_base_run_in_one_mixed_batch(
        own_base: Path, adapters: list[Path], batches: list[list[str | None]]) -> None:
    llms = [LLM(ModelSpec(model=str(own_base), adapter=str(a) if a else None, device="cpu", batch_size=16))
            for a in (None, *adapters[:2])]
    separate = [[r.text for r in llm.batch(PROMPTS, temperature=0.0, max_tokens=6)] for llm in llms]
    batches.clear()  # count only the batches of the requests asked together

    async def together() -> list[list[Reply]]:
        return await asyncio.gather(*(llm.abatch(PROMPTS, temperature=0.0, max_tokens=6) for llm in llms))

    mixed = [[r.text for r in replies] for replies in llms[0].runtime.run(together())]
    assert len(batches) == 1 and len(batches[0]) == 3 * len(PROMPTS) and len(set(batches[0])) == 3
    assert mixed == separate  # each row ran its own adapter (or the bare base)
    assert len({tuple(answers) for answers in mixed}) == 3


def test_an_adapter_that_fails_to_load_fails_only_its_own_rows(own_base: Path, tmp_path: Path) -> None:
    base, broken = (LLM(ModelSpec(model=str(own_base), adapter=a, device="cpu")) for a in (None, str(tmp_path)))
    expected = [r.text for r in base.batch(PROMPTS, temperature=0.0, max_tokens=6)]

    async def together() -> list:
        return await asyncio.gather(base.abatch(PROMPTS, temperature=0.0, max_tokens=6),
                                    broken.abatch(PROMPTS, temperature=0.0, max_tokens=6), return_exceptions=True)

    answers, failure = base.runtime.run(together())
    assert [r.text for r in answers] == expected
    assert isinstance(failure, ModelError) and "not a PEFT adapter directory" in str(failure)


def _answers(model: Path) -> list[str]:
    spec = ModelSpec(model=str(model), device="cpu")
    return [r.text for r in LLM(spec).batch(PROMPTS, temperature=0.0, max_tokens=6)]


@pytest.fixture
def two_bases(tiny_llama_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two copies of the tiny Llama: two base models of the same size, loaded by nobody else."""
    import shutil

    return Path(shutil.copytree(tiny_llama_dir, tmp_path / "first")), Path(shutil.copytree(tiny_llama_dir,
                                                                                           tmp_path / "second"))


def _budget_for_one(monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
    monkeypatch.setenv(BUDGET_ENV, str(1.5 * estimate_bytes(str(model), torch.float32) / 2**30))


def test_a_base_over_the_memory_budget_evicts_the_idle_one_which_reloads_on_use(
        two_bases: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_bases
    expected = reference_answers(first, None)
    _budget_for_one(monkeypatch, first)
    assert _answers(first) == expected
    weights = weakref.ref(load_model(str(first), device="cpu").model)
    assert held_bytes(weights()) == estimate_bytes(str(first), torch.float32)  # the estimate made before loading
    _answers(second)
    assert (str(first), "cpu") not in loaded_models() and (str(second), "cpu") in loaded_models()
    gc.collect()
    assert weights() is None  # the evicted weights were given back, not just forgotten
    assert _answers(first) == expected  # loaded again on its next use, answering as before
    assert (str(second), "cpu") not in loaded_models()  # which evicted the second in turn


def test_a_base_in_use_is_not_evicted(two_bases: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_bases
    _budget_for_one(monkeypatch, first)
    with use_model(str(first), device="cpu") as in_use:
        load_model(str(second), device="cpu")
        assert {(str(first), "cpu"), (str(second), "cpu")} <= set(loaded_models())
        assert in_use.model is load_model(str(first), device="cpu").model
    load_model(str(first), device="cpu")  # idle now: loading it again is a hit, nothing is evicted
    assert {(str(first), "cpu"), (str(second), "cpu")} <= set(loaded_models())


def test_a_bad_memory_budget_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ConfigError, match=r"^\$UNDERDOG_MODEL_MEMORY_GB: expected a number of GB, got 'lots'$"):
        budget_bytes()


def test_room_for_models_is_the_devices_free_memory_capped_by_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    psutil = pytest.importorskip("psutil")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert abs(room_for_models("cpu", 0) - psutil.virtual_memory().available) < 2**30
    monkeypatch.setenv(BUDGET_ENV, "1")
    assert room_for_models("cpu", 2**28) == 2**30 - 2**28  # the budget less what the loaded models hold
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed: the budget alone
    assert room_for_models("cpu", 2**28) == 2**30 - 2**28
    monkeypatch.delenv(BUDGET_ENV)
    assert room_for_models("cpu", 0) is None  # no limit known: nothing is evicted
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (5 * 2**30, 80 * 2**30))
    assert room_for_models("cuda:0", 0) == 5 * 2**30


def test_answer_many_answers_the_base_and_runs_in_one_batch_that_answer_then_reads(
        own_base: Path, adapters: list[Path], tmp_path: Path, batches: list[list[str | None]]) -> None:
    root = tmp_path / "p"
    init_project("Testville", root)
    for i, adapter in enumerate(adapters[:2]):  # two runs' adapters (copies: the fixture's stay as they are)
        shutil.copytree(adapter, root / "runs" / f"run-{i}" / "adapter")
    (root / "q.jsonl").write_text("".join(json.dumps({"question": q}) + "\n" for q in PROMPTS))
    project = Project(root, overrides=[f"models.student.model={own_base}", "models.student.params.temperature=0",
                                       "models.student.batch_size=16", "evaluate.answer_max_tokens=6"])
    import_evalset(project, root / "q.jsonl", "dev")
    answer_many(project, ["student", "run-0", "run-1"], "dev")
    assert len(batches) == 1 and len(batches[0]) == 3 * len(PROMPTS) and len(set(batches[0])) == 3
    answers = [tuple(a.answer for a in answer(project, name, "dev", progress=False))
               for name in ("student", "run-0", "run-1")]
    assert len(batches) == 1  # `answer` read the replies of the mixed batch from the cache
    assert len(set(answers)) == 3
