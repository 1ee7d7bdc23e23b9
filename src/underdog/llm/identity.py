"""A model spec's identity: the one definition of "the same model" for every cache and table.

    key = cache_key(model_identity(spec), request)   # a reply in the call path's cache (llm/caller.py)
    cid = candidate_id(spec)                          # whose answers (the `answers` table, evaluate/answer.py)
    who = judge_identity(spec, prompt_version)        # whose verdicts (the verdict cache, evaluate/judge.py)

All three start from `model_identity`: provider, model, endpoint and adapter (its path plus a hash of its weights,
so retraining into the same folder is a new model); each adds what changes its own output. Concurrency, rate
limits, timeouts, prices and keys belong to no identity. `tests/test_identity.py` pins the values: changing one
orphans users' caches of paid API calls, stored answers and verdicts.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from underdog.config import ModelSpec
from underdog.llm.base import Request
from underdog.llm.registry import backend_class

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def model_identity(spec: ModelSpec) -> dict[str, Any]:
    """Which model answers: provider, model, endpoint and adapter fingerprint."""
    return {"provider": spec.provider, "model": spec.model, "base_url": spec.base_url,
            "adapter": adapter_fingerprint(spec.adapter)}


def cache_key(model: dict[str, Any], request: Request) -> str:
    """The reply cache's key of `request` to the model `model_identity` names (the system prompt is in the
    request's messages, the params in its fields)."""
    return _sha256(canonical({**model, **request.key_fields()}))


def candidate_id(spec: ModelSpec) -> str:
    """Whose answers these are: the model plus its system prompt and sampling params."""
    fields = {**model_identity(spec), "system_prompt": spec.system_prompt, "params": spec.params.model_dump()}
    return _sha256(canonical(fields))[:16]


def judge_identity(spec: ModelSpec, prompt_version: str) -> str:
    """Whose verdicts these are: the model, its params, how it gives verdicts (log-probabilities of the options
    where its backend can score them) and the judge prompt's version. Kept as readable JSON, not a hash."""
    logprobs = "calibrated" if backend_class(spec.provider).can_score else False
    return canonical({**model_identity(spec), "params": spec.params.model_dump(), "logprobs": logprobs,
                      "prompt": prompt_version})


def canonical(fields: dict[str, Any]) -> str:
    """The JSON every identity is hashed from (sorted keys, json's default separators)."""
    return json.dumps(fields, sort_keys=True)


def adapter_fingerprint(adapter: str | None) -> str | None:
    """Adapter path plus a hash of its weights, so retraining into the same folder invalidates the cache.
    The hash is computed once per weights file version (path, size, mtime), not once per use."""
    if not adapter:
        return None
    for name in ADAPTER_WEIGHTS:
        weights = Path(adapter) / name
        if weights.exists():
            stat = weights.stat()
            return _hash_weights(adapter, str(weights), stat.st_size, stat.st_mtime_ns)
    return _sha256(adapter)


@functools.lru_cache(maxsize=64)
def _hash_weights(adapter: str, weights: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256(adapter.encode())
    digest.update(Path(weights).read_bytes())
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
