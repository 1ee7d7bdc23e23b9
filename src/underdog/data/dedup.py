"""Exact and near-duplicate detection with MinHash LSH (datasketch), for dedup and decontamination.

    keep = near_duplicates(texts, threshold=0.8)       # for each text: index of the earlier text it repeats, or None
    index = NearDupIndex(threshold=0.5); index.add("q1", "What permits do I need ...?")
    index.matches("Which permits are needed ...?")      # [("q1", 0.83)]

Texts are compared as sets of content-word stems (lowercased, stopwords dropped, crude suffix stripping), so
paraphrases that reuse the same content words ("needed" / "need", "licenses" / "license") match, while questions
about different things do not. LSH proposes candidates in near-constant time per text; each candidate is then
verified with the exact Jaccard similarity of the two sets, so the threshold means what it says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasketch import MinHash

NUM_PERM = 64
WORD = re.compile(r"[a-z0-9]+")
_STOP = (
    "a an the and or but if of to in on at by for with about from into over under as is are was were be been being "
    "do does did doing have has had i me my we our you your he she it its they them their this that these those "
    "what which who whom whose when where why how can could should would will shall may might must not no yes "
    "there here than then so too very just also any some all each more most such only own same other "
    "up down out off again further once am get got need needs needed"
)
STOPWORDS = frozenset(_STOP.split())
SUFFIXES = ("ing", "ed", "es", "s", "ly")


def stem(word: str) -> str:
    """Crude, consistent suffix stripping ("licenses", "license" -> "licens"; "opening" -> "open")."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def features(text: str) -> frozenset[str]:
    """The content-word stems of a text."""
    words = WORD.findall(text.lower())
    content = [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]  # "driver's" -> driver
    return frozenset(stem(w) for w in content) or frozenset(words)


def normalize(text: str) -> str:
    """Lowercase words only: the key of exact-duplicate detection."""
    return " ".join(WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def signatures(feature_sets: Iterable[frozenset[str]], num_perm: int = NUM_PERM) -> list[MinHash]:
    from datasketch import MinHash  # here: datasketch pulls in scipy, which `generate` never needs

    return list(MinHash.bulk([[f.encode() for f in fs] for fs in feature_sets], num_perm=num_perm))


class NearDupIndex:
    """Texts indexed for near-duplicate lookup (Jaccard of content-word stems >= threshold)."""

    def __init__(self, threshold: float, num_perm: int = NUM_PERM):
        self.threshold = threshold
        self.num_perm = num_perm
        from datasketch import MinHashLSH

        # LSH recall is lower near its threshold: ask it for a looser one and verify exactly.
        self.lsh = MinHashLSH(threshold=max(0.1, threshold * 0.8), num_perm=num_perm)
        self.features: dict[str, frozenset[str]] = {}

    def add(self, key: str, text: str, *, feats: frozenset[str] | None = None, sig: MinHash | None = None) -> None:
        feats = feats if feats is not None else features(text)
        self.features[key] = feats
        self.lsh.insert(key, sig or signatures([feats], self.num_perm)[0])

    def matches(self, text: str, *, feats: frozenset[str] | None = None,
                sig: MinHash | None = None) -> list[tuple[str, float]]:
        """Indexed keys whose similarity to `text` is at least the threshold, most similar first."""
        feats = feats if feats is not None else features(text)
        candidates = self.lsh.query(sig or signatures([feats], self.num_perm)[0])
        found = [(k, jaccard(feats, self.features[k])) for k in candidates]
        return sorted([m for m in found if m[1] >= self.threshold], key=lambda m: -m[1])


def near_duplicates(texts: list[str], threshold: float, num_perm: int = NUM_PERM) -> list[int | None]:
    """For each text, the index of an earlier kept text it nearly repeats (None: keep it). Near-linear time."""
    feats = [features(t) for t in texts]
    sigs = signatures(feats, num_perm)
    index = NearDupIndex(threshold, num_perm)
    result: list[int | None] = []
    for i, (f, s) in enumerate(zip(feats, sigs, strict=True)):
        found = index.matches("", feats=f, sig=s)
        result.append(int(found[0][0]) if found else None)
        if not found:
            index.add(str(i), "", feats=f, sig=s)
    return result


def naive_near_duplicates(texts: list[str], threshold: float) -> list[int | None]:
    """The all-pairs baseline of `near_duplicates` (exact Jaccard against every kept text; quadratic)."""
    feats = [features(t) for t in texts]
    kept: list[int] = []
    result: list[int | None] = []
    for i, f in enumerate(feats):
        match = next((k for k in kept if jaccard(f, feats[k]) >= threshold), None)
        result.append(match)
        if match is None:
            kept.append(i)
    return result
