"""A model spec's identity: the reply-cache key, the candidate id and the judge identity.

The golden values below were computed by the code before the identity moved into `underdog/llm/identity.py`;
they must never change, or every user's cache of paid API calls, stored answers and verdicts is orphaned.
"""

from pathlib import Path

import pytest

from underdog.config import GenerationParams, ModelSpec
from underdog.evaluate.answer import Candidate
from underdog.evaluate.judge import spec_identity
from underdog.llm.base import Request
from underdog.llm.caller import LLM

SPECS = {
    "api": ModelSpec(provider="openai", model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key_env="X_KEY",
                     params=GenerationParams(temperature=0.2, top_p=0.9, max_tokens=64, seed=7, stop=["\n\n"])),
    "api_prompt": ModelSpec(provider="openai", model="gpt-4o-mini", system_prompt="Be brief."),
    "local_adapter": ModelSpec(provider="local", model="smollm2-135m", adapter="runs/r1/adapter",
                               system_prompt="You know Harrowgate."),
    "local_no_weights": ModelSpec(provider="local", model="smollm2-135m", adapter="runs/r2/adapter"),
    "local_base": ModelSpec(provider="local", model="smollm2-135m"),
}
CHAT = Request([{"role": "user", "content": "What permits does a food truck need?"}],
               GenerationParams(temperature=0.0, max_tokens=32), json_mode=True, sample=2)
SCORE = Request([{"role": "user", "content": "Which is better?"}], options=("A", "B"))
PARAMS = '"params": {"max_tokens": 512, "seed": 0, "stop": null, "temperature": 0.7, "top_p": 0.95}'
GOLDEN = {  # name: (chat cache key, score cache key, candidate id, judge identity)
    "api": ("24938b678cd27f7701e89c5a20fd76389dab849626be7add1579bdba5d112def",
            "52ef9d5aab6a6b30c7061ccc4176a27458aed91094e1748106306ff3c2417e0b", "7dbb8bc5fa889f9e",
            '{"adapter": null, "base_url": "http://127.0.0.1:9/v1", "logprobs": false, "model": "gpt-4o-mini", '
            '"params": {"max_tokens": 64, "seed": 7, "stop": ["\\n\\n"], "temperature": 0.2, "top_p": 0.9}, '
            '"prompt": "judge-v1", "provider": "openai"}'),
    "api_prompt": ("26561eeaf3a5434c2eead84c6878b31bd4c9edd93c71196a4d303d2c9b77ab64",
                   "76536cc665264254822631d8e2001606f5bafa5aa10540729df9c4e96e076ee0", "ae3017a2c0193312",
                   '{"adapter": null, "base_url": null, "logprobs": false, "model": "gpt-4o-mini", '
                   f'{PARAMS}, "prompt": "judge-v1", "provider": "openai"}}'),
    "local_adapter": ("84438d9c295050320c75a67974a30749edae27a144f8a32525b72c7e0f1676fa",
                      "af472d36121a979ee97a09e31f1c790a0544fe64601a28fd1c5886454fd6bc7a", "86f4b4257a7b9406",
                      '{"adapter": "e426c662bcc380b04176d5033326280afc060b069be5ea93be9d52021007513e", '
                      '"base_url": null, "logprobs": "calibrated", "model": "smollm2-135m", '
                      f'{PARAMS}, "prompt": "judge-v1", "provider": "local"}}'),
    "local_no_weights": ("ecf51275169691aaad90da5f0879199a3702978cc7e84f55e7b4b543b3ed8a5d",
                         "8c7b87a84953d059a3cda700abf0f1734c9ac687b81f31b0e47905d0834dce27", "0df9e1b5513c03c3",
                         '{"adapter": "f97175ef2411fd005dcae30d19f0adabb30bc2403cf6eaa213be4c7a2c2f0e9e", '
                         '"base_url": null, "logprobs": "calibrated", "model": "smollm2-135m", '
                         f'{PARAMS}, "prompt": "judge-v1", "provider": "local"}}'),
    "local_base": ("ab11e6bfff91c450f029bc02b0dd7607bccc5fef63dbaa41a47e8eed5c1d0eef",
                   "5c491a2b3d7f2603f1735ebf063658e172ba0d76c0ce544a7a924eba7b01e629", "0ae67baa30f05c53",
                   '{"adapter": null, "base_url": null, "logprobs": "calibrated", "model": "smollm2-135m", '
                   f'{PARAMS}, "prompt": "judge-v1", "provider": "local"}}'),
}


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """runs/r1/adapter with weights, runs/r2/adapter without, under the current folder (paths are hashed)."""
    monkeypatch.chdir(tmp_path)
    r1 = tmp_path / "runs" / "r1" / "adapter"
    r1.mkdir(parents=True)
    (r1 / "adapter_config.json").write_text('{"r": 8}')
    (r1 / "adapter_model.safetensors").write_bytes(b"weights v1")
    (tmp_path / "runs" / "r2" / "adapter").mkdir(parents=True)
    return r1


def identities(spec: ModelSpec) -> tuple[str, str, str, str]:
    llm = LLM(spec)
    return llm.cache_key(CHAT), llm.cache_key(SCORE), Candidate("any name", spec).id, spec_identity(spec)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_identities_are_byte_identical_to_the_golden_values(adapters: Path, name: str) -> None:
    assert identities(SPECS[name]) == GOLDEN[name]


def test_retrained_weights_change_every_identity(adapters: Path) -> None:
    before = identities(SPECS["local_adapter"])
    (adapters / "adapter_model.safetensors").write_bytes(b"weights v2, retrained")
    after = identities(SPECS["local_adapter"])
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_what_each_identity_covers(adapters: Path) -> None:
    """The cache key ignores the system prompt (it is in the messages); the candidate id and judge identity
    cover the params; only the candidate id covers the system prompt; no identity covers limits or prices."""
    base = SPECS["api_prompt"]
    prompt = base.model_copy(update={"system_prompt": "Be long."})
    params = base.model_copy(update={"params": GenerationParams(temperature=0.1)})
    limits = base.model_copy(update={"concurrency": 2, "price_per_1m_input": 1.0, "timeout_s": 5.0})
    same = [a == b for a, b in zip(identities(base), identities(prompt), strict=True)]
    assert same == [True, True, False, True]
    assert [a == b for a, b in zip(identities(base), identities(params), strict=True)] == [True, True, False, False]
    assert identities(limits) == identities(base)
