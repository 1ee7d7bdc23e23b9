"""The Q4_K / Q6_K quantizers against gguf-py's own dequantizers, and the Q4_K_M recipe."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from underdog.train import kquants

Q = gguf.GGMLQuantizationType


def _relative_error(x: np.ndarray, qtype: Q, quantize) -> float:
    y = gguf.quants.dequantize(quantize(x, qtype), qtype)
    assert y.shape == x.shape
    return float(np.sqrt(((y - x) ** 2).mean() / (x ** 2).mean()))


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((32, 512)) * 0.05).astype(np.float32)
    x[:, 7] *= 20  # an outlier column, as real weight matrices have
    return x


@pytest.mark.parametrize(("qtype", "between"), [(Q.Q4_K, (Q.Q5_0, Q.Q4_0)), (Q.Q6_K, (Q.Q8_0, Q.Q5_0))])
def test_k_quants_read_back_through_gguf_and_sit_between_the_legacy_types(weights: np.ndarray, qtype: Q,
                                                                        between: tuple[Q, Q]) -> None:
    blocks = kquants.quantize(weights, qtype)
    assert blocks.dtype == np.uint8
    assert blocks.shape == (32, 512 // 256 * gguf.GGML_QUANT_SIZES[qtype][1])
    error = _relative_error(weights, qtype, kquants.quantize)
    finer, coarser = (_relative_error(weights, t, gguf.quants.quantize) for t in between)
    assert finer < error < coarser, (finer, error, coarser)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K])
def test_flat_and_zero_blocks_come_back_exactly(qtype: Q) -> None:
    x = np.zeros((3, 256), dtype=np.float32)
    x[1] = -0.25  # one value throughout, below zero
    x[2, :32] = 0.5
    y = gguf.quants.dequantize(kquants.quantize(x, qtype), qtype)
    assert np.abs(y[0]).max() == 0
    assert np.abs(y[1] + 0.25).max() < 1e-3
    assert np.abs(y[2, 32:]).max() < 1e-3 and np.abs(y[2, :32] - 0.5).max() < 1e-2


def test_q4_k_m_recipe_is_llama_cpp_s() -> None:
    def kind(name: str, columns: int = 512, layers: int = 16, tied: bool = False) -> str:
        return kquants.q4_k_m_type(name, columns, layers, tied).name

    assert kind("blk.5.attn_q.weight") == "Q4_K"
    assert kind("output.weight") == "Q6_K"
    assert kind("token_embd.weight") == "Q4_K" and kind("token_embd.weight", tied=True) == "Q6_K"
    # attn_v / ffn_down: more bits in the first and last eighth of the layers and every third between
    more = [i for i in range(16) if kind(f"blk.{i}.ffn_down.weight") == "Q6_K"]
    assert more == [0, 1, 4, 7, 10, 13, 14, 15]
    assert [kind(f"blk.{i}.attn_v.weight") for i in more] == ["Q6_K"] * len(more)
    # rows that do not split into 256-value super-blocks take llama.cpp's fallbacks
    assert kind("blk.5.attn_q.weight", columns=576) == "Q5_0"
    assert kind("output.weight", columns=576) == "Q8_0"
