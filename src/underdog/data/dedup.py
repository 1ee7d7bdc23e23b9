"""Exact and near-duplicate detection with MinHash LSH on numpy arrays, for dedup and decontamination.

    keep = near_duplicates(texts, threshold=0.8)       # for each text: index of the earlier text it repeats, or None
    index = NearDupIndex(threshold=0.5); index.add("q1", "What permits do I need ...?")
    index.matches("Which permits are needed ...?")      # [("q1", 0.83)]

Texts are compared as sets of content-word stems (lowercased, stopwords dropped, crude suffix stripping), so
paraphrases that reuse the same content words ("needed" / "need", "licenses" / "license") match, while questions
about different things do not. LSH proposes candidates; each candidate is then verified with the exact Jaccard
similarity of the two sets (of 32-bit feature hashes), so the threshold means what it says.

Memory (issue 11: 1M examples in <= 1.5 GB): signatures are computed a chunk of texts at a time, in numpy, and
only what the search needs is kept: one uint64 key per LSH band per text and the feature hashes in one flat
uint32 array. Candidates come from sorting each band's keys (texts sharing a bucket), so only texts with an
earlier bucket-mate reach the Python loop. (datasketch, used before, held a MinHash object per text and a
bytes key per band in dicts: 5.6 GB at 1M.)
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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


@lru_cache(maxsize=1 << 17)  # words repeat: each is stemmed once
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


def jaccard(a: frozenset[str] | set[int], b: frozenset[str] | set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


MERSENNE = (1 << 61) - 1
MAX_HASH = (1 << 32) - 1
CHUNK = 5_000  # texts per signature batch: bounds the (features x permutations) matrix to ~30 MB


def feature_hashes(text: str) -> list[int]:
    """32-bit hashes (crc32, stable across runs) of a text's features; never empty."""
    return sorted({zlib.crc32(f.encode()) for f in features(text)}) or [0]


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    rng = np.random.RandomState(1)  # fixed: the same text always gets the same signature
    return (rng.randint(1, (1 << 61) - 1, num_perm, dtype=np.uint64),
            rng.randint(0, (1 << 61) - 1, num_perm, dtype=np.uint64))


def signatures(hashed: Sequence[Sequence[int]], num_perm: int = NUM_PERM) -> np.ndarray:
    """MinHash signatures (len(hashed) x num_perm, uint64 < 2^32) of feature-hash lists, in one numpy pass."""
    import numpy as np  # here: `generate` needs only normalize(), and numpy costs ~0.1 s to import

    a, b = _permutations(num_perm)
    flat = np.fromiter((h for hs in hashed for h in hs), dtype=np.uint64)
    starts = np.cumsum([0] + [len(hs) for hs in hashed[:-1]])
    with np.errstate(over="ignore"):  # wrap-around multiplication, as in datasketch; in place: one matrix
        permuted = flat[:, None] * a
        permuted += b
        permuted %= np.uint64(MERSENNE)
        permuted &= np.uint64(MAX_HASH)
    return np.minimum.reduceat(permuted, starts, axis=0)


@lru_cache(maxsize=32)
def lsh_bands(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) minimising the equally weighted false-positive and false-negative areas around `threshold`
    (datasketch's choice: 10 x 6 for 0.64 at 64 permutations)."""
    import numpy as np

    s = np.linspace(0, 1, 1001)
    best, pick = np.inf, (1, num_perm)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            p = 1 - (1 - s**rows) ** bands
            error = np.where(s <= threshold, p, 1 - p).mean()  # the area, on a uniform grid over [0, 1]
            if error < best:
                best, pick = error, (bands, rows)
    return pick


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 key per band per signature (a multiply-add hash of the band's rows)."""
    import numpy as np

    mix = np.array([0x9E3779B97F4A7C15 ^ (j * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF) | 1 for j in range(rows)],
                   dtype=np.uint64)
    shaped = sigs[:, :bands * rows].reshape(len(sigs), bands, rows)
    with np.errstate(over="ignore"):
        return (shaped * mix).sum(axis=2, dtype=np.uint64)


class NearDupIndex:
    """Texts indexed for near-duplicate lookup (Jaccard of content-word stems >= threshold)."""

    def __init__(self, threshold: float, num_perm: int = NUM_PERM):
        self.threshold = threshold
        self.num_perm = num_perm
        # LSH recall is lower near its threshold: ask it for a looser one and verify exactly.
        self.bands, self.rows = lsh_bands(max(0.1, threshold * 0.8), num_perm)
        self.buckets: dict[tuple[int, int], list[str]] = defaultdict(list)
        self.features: dict[str, set[int]] = {}

    def add(self, key: str, text: str) -> None:
        hashed = feature_hashes(text)
        self.features[key] = set(hashed)
        for band, k in enumerate(self._keys(hashed)):
            self.buckets[band, k].append(key)

    def matches(self, text: str) -> list[tuple[str, float]]:
        """Indexed keys whose similarity to `text` is at least the threshold, most similar first."""
        hashed = feature_hashes(text)
        candidates = {key for band, k in enumerate(self._keys(hashed)) for key in self.buckets.get((band, k), ())}
        found = [(key, jaccard(set(hashed), self.features[key])) for key in candidates]
        return sorted([m for m in found if m[1] >= self.threshold], key=lambda m: (-m[1], m[0]))

    def _keys(self, hashed: list[int]) -> list[int]:
        return band_keys(signatures([hashed], self.num_perm), self.bands, self.rows)[0].tolist()


def near_duplicates(texts: Sequence[str], threshold: float, num_perm: int = NUM_PERM) -> list[int | None]:
    """For each text, the index of an earlier kept text it nearly repeats (None: keep it). Near-linear time."""
    import numpy as np

    n = len(texts)
    if n == 0:
        return []
    bands, rows = lsh_bands(max(0.1, threshold * 0.8), num_perm)
    keys = np.empty((n, bands), dtype=np.uint64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    flat_parts = []
    for start in range(0, n, CHUNK):  # streamed: one chunk's signature matrix at a time
        hashed = [feature_hashes(t) for t in texts[start:start + CHUNK]]
        keys[start:start + len(hashed)] = band_keys(signatures(hashed, num_perm), bands, rows)
        offsets[start + 1:start + len(hashed) + 1] = np.cumsum([len(h) for h in hashed]) + offsets[start]
        flat_parts.append(np.fromiter((h for hs in hashed for h in hs), dtype=np.uint32))
    flat = np.concatenate(flat_parts)
    del flat_parts
    return _sequential(_bucket_mates(keys), flat, offsets, threshold)


def _bucket_mates(keys: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """For every text that shares a bucket with an earlier text: [(band, bucket id)] of those buckets.
    Bucket ids are positions in the band's sorted order, so no key leaves numpy."""
    import numpy as np

    mates: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")  # ties keep text order: earlier texts first
        ordered = keys[order, band]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        group = np.cumsum(first) - 1
        shared = np.flatnonzero(np.r_[~first[1:], False] | ~first)  # positions in a bucket of 2+
        for position, text in zip(shared.tolist(), order[shared].tolist(), strict=True):
            mates[text].append((band, int(group[position])))
    return mates


def _sequential(mates: dict[int, list[tuple[int, int]]], flat: np.ndarray, offsets: np.ndarray,
                threshold: float) -> list[int | None]:
    """Walk the texts in order; each is checked only against the kept texts in its buckets."""
    result: list[int | None] = [None] * (len(offsets) - 1)
    kept_in: dict[tuple[int, int], list[int]] = defaultdict(list)

    def feats(i: int) -> set[int]:
        return set(flat[offsets[i]:offsets[i + 1]].tolist())

    for i in sorted(mates):
        buckets = mates[i]
        mine = feats(i)
        similar = [(jaccard(mine, feats(j)), -j) for j in {j for b in buckets for j in kept_in.get(b, ())}]
        best = max(similar, default=(0.0, 0))
        match = -best[1] if similar and best[0] >= threshold else None  # the most similar, the earliest on ties
        if match is None:
            for b in buckets:
                kept_in[b].append(i)
        else:
            result[i] = match
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
