"""The local transformers backend: batching, seeds, params, and option scoring by log-probability."""

import math

import pytest
import torch

from underdog.config import ModelSpec
from underdog.errors import ModelError
from underdog.llm import LLM
from underdog.llm.local import load_model


def test_batch_generation_matches_single_requests(tiny_llama_dir) -> None:
    llm = LLM(ModelSpec(model=str(tiny_llama_dir), batch_size=4))
    prompts = ["a", "a longer prompt with more words", "mid length", "x y z"]
    batched = llm.batch(prompts, temperature=0.0, max_tokens=8)
    single = [llm.chat(p, temperature=0.0, max_tokens=8) for p in prompts]
    assert [r.text for r in batched] == [r.text for r in single]  # left padding does not change greedy output
    assert all(r.output_tokens <= 8 and r.input_tokens > 0 for r in batched)


def test_seeded_sampling_is_reproducible(tiny_llama_dir) -> None:
    llm = LLM(ModelSpec(model=str(tiny_llama_dir)))
    first = llm.chat("hello", temperature=1.0, top_p=0.9, max_tokens=10, seed=7).text
    assert llm.chat("hello", temperature=1.0, top_p=0.9, max_tokens=10, seed=7).text == first
    others = {llm.chat("hello", temperature=1.0, top_p=0.9, max_tokens=10, seed=s).text for s in range(8, 12)}
    assert others - {first}


def test_system_prompt_is_applied(tiny_llama_dir) -> None:
    spec = ModelSpec(model=str(tiny_llama_dir), system_prompt="You are terse.")
    explicit = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
    plain = LLM(ModelSpec(model=str(tiny_llama_dir))).chat("hi", max_tokens=2, temperature=0)
    expected = LLM(ModelSpec(model=str(tiny_llama_dir))).chat(explicit, max_tokens=2, temperature=0)
    with_system = LLM(spec).chat("hi", max_tokens=2, temperature=0)
    assert (with_system.input_tokens, with_system.text) == (expected.input_tokens, expected.text)
    assert with_system.input_tokens != plain.input_tokens  # SmolLM2's own default system prompt was replaced


def test_score_options_equals_manual_log_probability(tiny_llama_dir) -> None:
    llm = LLM(ModelSpec(model=str(tiny_llama_dir)))
    messages = [{"role": "user", "content": "Which is better, A or B?"}]
    scores = llm.score([messages], ["A", "B", "tie"])[0]
    assert len(scores) == 3 and all(s < 0 for s in scores)
    loaded = load_model(str(tiny_llama_dir))
    tok = loaded.tokenizer
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = prompt["input_ids"] + tok("tie", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([ids]), **loaded.adapter_args(1)).logits[0]  # the bare base
    logprobs = torch.log_softmax(logits, -1)
    n = len(prompt["input_ids"])
    manual = sum(float(logprobs[i - 1, ids[i]]) for i in range(n, len(ids)))
    assert math.isclose(scores[2], manual, rel_tol=1e-4)


def test_missing_model_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(ModelError, match="cannot load model"):
        LLM(ModelSpec(model=str(tmp_path / "nothing-here"))).chat("hi")


def test_queued_local_requests_are_not_timed_out(tiny_llama_dir) -> None:
    # batch_size 1 makes later requests wait behind earlier ones far longer than timeout_s
    llm = LLM(ModelSpec(model=str(tiny_llama_dir), batch_size=1, timeout_s=0.001, max_retries=0))
    replies = llm.batch([f"prompt {i}" for i in range(4)], max_tokens=4)
    assert all(r.output_tokens > 0 for r in replies) and llm.http_calls == 4


def test_inference_dtype_follows_the_gpu_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    from underdog.llm.local import inference_dtype

    capability = {0: (7, 5), 1: (9, 0)}  # a T4 and an H100
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: capability[index])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert inference_dtype("cpu") == torch.float32
    assert inference_dtype("cuda") == inference_dtype("cuda:0") == torch.float16
    assert inference_dtype("cuda:1") == torch.bfloat16


def test_scoring_goes_through_the_call_path(tiny_llama_dir, tmp_path) -> None:
    from underdog.store import Store

    store = Store(tmp_path / "underdog.db")
    messages = [{"role": "user", "content": "Which is better, A or B?"}]
    first = LLM(ModelSpec(model=str(tiny_llama_dir)), store, stage="judge")
    scores = first.score([messages, messages + [{"role": "user", "content": "again"}]], ["A", "B"])
    again = LLM(ModelSpec(model=str(tiny_llama_dir)), store, stage="judge")
    assert again.score([messages], ["A", "B"])[0] == scores[0] and again.http_calls == 0  # cached
    assert first.http_calls == 2 and store.usage()[0]["calls"] == 3  # logged like completions
    api = LLM(ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ModelError, match="cannot score options"):
        api.score([messages], ["A", "B"])


@pytest.mark.slow
def test_converting_the_embedded_model_prints_no_progress_bar(tmp_path, monkeypatch, capfd) -> None:
    """The GGUF reader's own tqdm bar and transformers' bars stay out of piped output (the demo's included)."""
    from underdog.llm.local import embedded_model_dir

    monkeypatch.setenv("UNDERDOG_CACHE", str(tmp_path))
    assert (embedded_model_dir() / "model.safetensors").exists()
    captured = capfd.readouterr()
    assert captured.out + captured.err == ""
