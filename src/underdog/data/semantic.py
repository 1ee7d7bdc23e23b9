"""Near-duplicates by meaning: cosine similarity of sentence embeddings, the pass after MinHash's word pass.

    vectors = encode(questions, fast=True)                 # underdog.llm.embeddings (all-MiniLM-L6-v2)
    semantic_duplicates(vectors, 0.86)   # per row: (earlier kept row it repeats, similarity), or None to keep it
    closest(vectors, eval_vectors, 0.80) # per row: (most similar target row, similarity) at or above 0.80, or None

MinHash (`dedup.py`) finds texts that share their words; a paraphrase that says the same thing in other words
("bulk trash pickup for an old couch" / "large-item garbage collection for a used sofa") has few words in common
and passes it. Embeddings place such texts close together. The search is exact: all pairs, a block of rows at a
time against the rows before it (n^2/2 dot products: 100k texts x 384 dimensions ~ 4 TFLOP, tens of seconds on
two cores), holding one block x n matrix (512 x 100k = 200 MB) besides the vectors (n x 384 x 4 bytes). Where the
CPU multiplies bfloat16 natively the blocks are multiplied in bf16 (2.3x faster), keeping pairs within `MARGIN`
of the threshold, whose cosines are then computed again in float32: the same matches, the same similarities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from underdog.llm.embeddings import bf16_is_native

if TYPE_CHECKING:
    import torch

BLOCK = 512  # rows per similarity block
WIDTH = 4096  # columns are multiplied in multiples of this (bf16 matmuls of 200 shapes held 200+ MB more)
MARGIN = 0.02  # bf16 inputs move a cosine of unit vectors by < 0.008: candidates this close are checked in fp32
Match = tuple[int, float]  # (row index, cosine similarity)


def semantic_duplicates(vectors: torch.Tensor, threshold: float, block: int = BLOCK,
                        coarse: bool | None = None) -> list[Match | None]:
    """For each row of `vectors` (L2-normalised), the most similar earlier *kept* row at or above `threshold`
    (ties: the earliest), or None: the row is kept. Rows are decided in order, as `dedup.near_duplicates` does.
    `coarse`: find candidates in bf16 first (default: where the CPU has bf16 units)."""
    import torch  # here: torch costs seconds to import, and `underdog --help` must stay fast

    coarse = bf16_is_native() if coarse is None else coarse
    searched = vectors.to(torch.bfloat16) if coarse else vectors
    cut = threshold - MARGIN if coarse else threshold
    n = len(vectors)
    result: list[Match | None] = [None] * n
    kept = bytearray(b"\x01" * n)
    buffer = torch.empty(min(block, n) * n, dtype=searched.dtype)  # one block's similarities, reused
    above = torch.empty(min(block, n) * n, dtype=torch.bool)
    for start in range(0, n, block):
        end = min(start + block, n)
        width = min(-(-end // WIDTH) * WIDTH, n)  # few distinct shapes: oneDNN keeps memory for each it saw
        sims = torch.matmul(searched[start:end], searched[:width].T,
                            out=buffer[:(end - start) * width].view(-1, width))[:, :end]
        sims[:, start:end].masked_fill_(torch.ones(end - start, end - start, dtype=torch.bool).triu(), -2.0)
        if start:  # rows dropped in earlier blocks are no one's original
            dropped = torch.frombuffer(kept, dtype=torch.bool, count=start).logical_not()
            sims[:, :start].masked_fill_(dropped, -2.0)
        rows, cols = torch.ge(sims, cut, out=above[:sims.numel()].view_as(sims)).nonzero(as_tuple=True)
        if coarse:  # the candidates' cosines in float32, and only those at or above the threshold
            values = (vectors[start + rows] * vectors[cols]).sum(dim=1)
            close = values >= threshold
            rows, cols, values = rows[close], cols[close], values[close]
        else:
            values = sims[rows, cols]
        _decide(start, rows.tolist(), cols.tolist(), values.tolist(), kept, result)
    return result


def _decide(start: int, rows: list[int], cols: list[int], values: list[float], kept: bytearray,
            result: list[Match | None]) -> None:
    """Walk one block's candidate pairs in row-major order: each row takes its most similar column still kept
    (a column inside the block was decided earlier in this walk, as its row comes first)."""
    current, match = -1, None
    for row, col, value in zip(rows, cols, values, strict=True):
        if start + row != current:
            _settle(current, match, kept, result)
            current, match = start + row, None
        if kept[col] and (match is None or value > match[1]):
            match = (col, value)
    _settle(current, match, kept, result)


def _settle(row: int, match: Match | None, kept: bytearray, result: list[Match | None]) -> None:
    if match is not None:
        result[row] = match
        kept[row] = 0


def closest(vectors: torch.Tensor, targets: torch.Tensor, threshold: float, block: int = 4096) -> list[Match | None]:
    """For each row of `vectors`, the most similar row of `targets` if its similarity reaches `threshold`."""
    found: list[Match | None] = []
    if not len(targets):
        return [None] * len(vectors)
    for start in range(0, len(vectors), block):
        values, indices = (vectors[start:start + block] @ targets.T).max(dim=1)
        found += [(j, v) if v >= threshold else None for j, v in zip(indices.tolist(), values.tolist(), strict=True)]
    return found
