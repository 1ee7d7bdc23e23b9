"""llama.cpp's Q4_K and Q6_K quantizers in numpy, and its Q4_K_M recipe: which tensor gets which type.

    blocks = quantize(rows, Q4_K)   # float32 (n, k), k a multiple of 256 -> uint8 (n, k // 256 * 144)
    blocks = quantize(rows, Q6_K)   # -> uint8 (n, k // 256 * 210); other types: gguf's own quantizers
    qtype = q4_k_m_type("blk.3.ffn_down.weight", columns=1536, layers=30, tied_output=True)

The `gguf` package (llama.cpp's gguf-py) reads every k-quant (`gguf.quants.dequantize`) but writes none; these
are ports of ggml-quants.c's reference quantizers (`quantize_row_q4_K_ref` with `make_qkx2_quants`,
`quantize_row_q6_K_ref` with `make_qx_quants`: what `llama-quantize` runs without an importance matrix),
vectorised over blocks. Tests read them back through gguf-py's own dequantizers.
"""

from __future__ import annotations

import re

import gguf
import numpy as np

QK_K = 256  # values per super-block
Q4_K = gguf.GGMLQuantizationType.Q4_K
Q6_K = gguf.GGMLQuantizationType.Q6_K
FALLBACK = {  # llama.cpp's type for a tensor whose rows do not split into 256-value super-blocks
    Q4_K: gguf.GGMLQuantizationType.Q5_0,
    Q6_K: gguf.GGMLQuantizationType.Q8_0,
}


def q4_k_m_type(name: str, columns: int, layers: int, tied_output: bool) -> gguf.GGMLQuantizationType:
    """The type llama.cpp's `llama-quantize ... Q4_K_M` gives a 2-D tensor (llama_tensor_get_type): the output
    matrix (the token embeddings where they are tied to it) Q6_K; attn_v and ffn_down Q6_K in the first and last
    eighth of the layers and every third between, else Q4_K; the rest Q4_K; the fallback where rows are short."""
    layer = re.match(r"blk\.(\d+)\.", name)
    output = name == "output.weight" or (tied_output and name == "token_embd.weight")
    mixed = layer is not None and name.endswith(("attn_v.weight", "ffn_down.weight"))
    qtype = Q6_K if output or (mixed and _more_bits(int(layer[1]), layers)) else Q4_K
    return FALLBACK[qtype] if columns % QK_K else qtype


def _more_bits(layer: int, layers: int) -> bool:
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def quantize(rows: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """`rows` as `qtype` blocks, shaped as `gguf.quants.quantize` returns: Q4_K and Q6_K here (last axis a multiple
    of 256), every other type by the `gguf` package."""
    if qtype not in (Q4_K, Q6_K):
        return gguf.quants.quantize(rows, qtype)
    rows = np.asarray(rows, dtype=np.float32)
    packed = {Q4_K: _q4_k_blocks, Q6_K: _q6_k_blocks}[qtype](rows.reshape(-1, QK_K))
    return packed.reshape(*rows.shape[:-1], rows.shape[-1] // QK_K * packed.shape[-1])


def _nearest(x: np.ndarray) -> np.ndarray:
    return np.rint(x).astype(np.int32)  # ggml's nearest_int rounds half to even, as rint does


def _make_qkx2_quants(x: np.ndarray, nmax: int, rmin: float, rdelta: float, nstep: int) -> tuple[np.ndarray, ...]:
    """Per row of `x` (groups, n): scale, -min and levels 0..nmax minimising the weighted squared error
    (weights av_x + |x|, as quantize_row_q4_K_ref passes them)."""
    weights = np.sqrt(np.mean(x * x, axis=1, keepdims=True)) + np.abs(x)
    low = np.minimum(x.min(axis=1), 0.0)
    high = x.max(axis=1)
    flat = high == low
    span = np.where(flat, 1.0, high - low)
    sum_w = weights.sum(axis=1)
    sum_x = (weights * x).sum(axis=1)

    iscale = nmax / span
    scale = 1 / iscale
    levels = np.clip(_nearest(iscale[:, None] * (x - low[:, None])), 0, nmax)
    best = (weights * (scale[:, None] * levels + low[:, None] - x) ** 2).sum(axis=1)
    minimum = low.copy()
    for step in range(nstep + 1):  # as in C, each trial starts from the best minimum so far
        reach = high - minimum
        iscale = (rmin + rdelta * step + nmax) / np.where(flat | (reach <= 0), 1.0, reach)
        trial = np.clip(_nearest(iscale[:, None] * (x - minimum[:, None])), 0, nmax).astype(np.float32)
        sum_l = (weights * trial).sum(axis=1)
        sum_l2 = (weights * trial * trial).sum(axis=1)
        sum_xl = (weights * trial * x).sum(axis=1)
        det = sum_w * sum_l2 - sum_l * sum_l
        ok = det > 0
        safe = np.where(ok, det, 1.0)
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe
        positive = this_min > 0
        this_scale = np.where(positive, sum_xl / np.where(sum_l2 > 0, sum_l2, 1.0), this_scale)
        this_min = np.where(positive, 0.0, this_min)
        error = (weights * (this_scale[:, None] * trial + this_min[:, None] - x) ** 2).sum(axis=1)
        better = ok & (error < best)
        levels = np.where(better[:, None], trial, levels)
        best = np.where(better, error, best)
        scale = np.where(better, this_scale, scale)
        minimum = np.where(better, this_min, minimum)
    scale = np.where(flat, 0.0, scale)
    minimum = np.where(flat, low, minimum)
    levels = np.where(flat[:, None], 0, levels)
    return scale.astype(np.float32), (-minimum).astype(np.float32), levels


def _q4_k_blocks(x: np.ndarray) -> np.ndarray:
    """quantize_row_q4_K_ref: per super-block fp16 d and dmin, eight 6-bit (scale, min) pairs packed in 12 bytes,
    and 256 4-bit levels: 144 bytes."""
    n = len(x)
    groups = x.reshape(n * 8, 32)
    scales, mins, _ = _make_qkx2_quants(groups, 15, -1.0, 0.1, 20)
    scales, mins = scales.reshape(n, 8), mins.reshape(n, 8)
    max_scale, max_min = scales.max(axis=1), mins.max(axis=1)
    inv_scale = np.where(max_scale > 0, 63 / np.where(max_scale > 0, max_scale, 1), 0.0)
    inv_min = np.where(max_min > 0, 63 / np.where(max_min > 0, max_min, 1), 0.0)
    ls = np.minimum(_nearest(inv_scale[:, None] * scales), 63).astype(np.uint8)
    lm = np.minimum(_nearest(inv_min[:, None] * mins), 63).astype(np.uint8)
    packed_scales = np.zeros((n, 12), dtype=np.uint8)
    packed_scales[:, 0:4] = ls[:, :4] | ((ls[:, 4:] >> 4) << 6)
    packed_scales[:, 4:8] = lm[:, :4] | ((lm[:, 4:] >> 4) << 6)
    packed_scales[:, 8:12] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
    d = (max_scale / 63).astype(np.float16)
    dmin = (max_min / 63).astype(np.float16)

    sub_d = d.astype(np.float32)[:, None] * ls  # what the reader will use, rounded as it will be
    sub_m = dmin.astype(np.float32)[:, None] * lm
    safe = np.where(sub_d == 0, 1.0, sub_d)
    levels = np.clip(_nearest((x.reshape(n, 8, 32) + sub_m[..., None]) / safe[..., None]), 0, 15)
    levels = np.where(sub_d[..., None] == 0, 0, levels).astype(np.uint8).reshape(n, 4, 2, 32)
    qs = (levels[:, :, 0] | (levels[:, :, 1] << 4)).reshape(n, 128)
    return np.concatenate([d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), packed_scales, qs],
                          axis=1)


def _make_qx_quants(x: np.ndarray, nmax: int) -> np.ndarray:
    """make_qx_quants with rmse_type 1 (weights x^2): per row of `x` the scale of symmetric levels -nmax..nmax-1,
    searched over 19 trial inverse scales."""
    picked = np.abs(x).argmax(axis=1)
    peak = x[np.arange(len(x)), picked]
    zero = np.abs(peak) < 1e-15  # GROUP_MAX_EPS
    peak = np.where(zero, 1.0, peak)
    weights = x * x

    def trial(iscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        levels = np.clip(_nearest(iscale[:, None] * x), -nmax, nmax - 1).astype(np.float32)
        return (weights * x * levels).sum(axis=1), (weights * levels * levels).sum(axis=1)

    sum_lx, sum_l2 = trial(-nmax / peak)
    scale = np.where(sum_l2 > 0, sum_lx / np.where(sum_l2 > 0, sum_l2, 1.0), 0.0)
    best = scale * sum_lx
    for step in (*range(-9, 0), *range(1, 10)):
        sum_lx, sum_l2 = trial(-(nmax + 0.1 * step) / peak)
        better = (sum_l2 > 0) & (sum_lx * sum_lx > best * sum_l2)
        this_scale = sum_lx / np.where(sum_l2 > 0, sum_l2, 1.0)
        scale = np.where(better, this_scale, scale)
        best = np.where(better, this_scale * sum_lx, best)
    return np.where(zero, 0.0, scale).astype(np.float32)


def _q6_k_blocks(x: np.ndarray) -> np.ndarray:
    """quantize_row_q6_K_ref: 256 6-bit levels (low 4 bits in 128 bytes, high 2 in 64), sixteen int8 scales and
    one fp16 d: 210 bytes."""
    n = len(x)
    scales = _make_qx_quants(x.reshape(n * 16, 16), 32).reshape(n, 16)
    picked = np.abs(scales).argmax(axis=1)
    max_scale = scales[np.arange(n), picked]
    empty = np.abs(max_scale) < 1e-15
    iscale = np.where(empty, 0.0, -128 / np.where(empty, 1.0, max_scale))
    d = np.where(empty, 0.0, 1 / np.where(empty, 1.0, iscale)).astype(np.float16)
    sc = np.minimum(127, _nearest(iscale[:, None] * scales)).astype(np.int8)
    sub_d = d.astype(np.float32)[:, None] * sc
    safe = np.where(sub_d == 0, 1.0, sub_d)
    levels = np.clip(_nearest(x.reshape(n, 16, 16) / safe[..., None]), -32, 31) + 32
    levels = np.where(sub_d[..., None] == 0, 32, levels)  # the reference leaves such levels unset (zeroed block)
    levels = np.where(empty[:, None, None], 0, levels).astype(np.uint8).reshape(n, 2, 4, 32)
    ql = np.concatenate([levels[:, :, 0] & 0xF | ((levels[:, :, 2] & 0xF) << 4),
                         levels[:, :, 1] & 0xF | ((levels[:, :, 3] & 0xF) << 4)], axis=2).reshape(n, 128)
    qh = (levels[:, :, 0] >> 4) | ((levels[:, :, 1] >> 4) << 2) | ((levels[:, :, 2] >> 4) << 4) \
        | ((levels[:, :, 3] >> 4) << 6)
    sc = np.where(empty[:, None], 0, sc).astype(np.int8)
    return np.concatenate([ql, qh.reshape(n, 64), sc.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1)
