"""A causal LM in transformers as one GGUF file (llama.cpp, Ollama, LM Studio), written with the `gguf` package.

    size = write_gguf(model, tokenizer_dir, Path("model-q8_0.gguf"), quant="q8_0", name="my-run")

The `gguf` package is llama.cpp's own Python library (gguf-py): its writer, its map from Hugging Face tensor names
to GGUF's (`get_tensor_name_map`), its tokenizer metadata (`SpecialVocab`: merges, special tokens, chat template)
and its numpy quantizers. What this module adds is what llama.cpp's `convert_hf_to_gguf.py` does for the
architectures below, and no more: the hyperparameter keys, the token list, the pre-tokenizer's name, and the
rotary permutation of Llama's query and key weights. llama.cpp's converter itself is not on PyPI from its authors
(docs/training.md says what was tried).

Quantizations: f32, f16 and q8_0 with the `gguf` package's quantizers, and q4_k_m with llama.cpp's recipe and its
Q4_K / Q6_K reference quantizers ported in `kquants.py` (gguf-py reads k-quants but does not write them). Norms
and other 1-D tensors stay f32, as llama.cpp keeps them. Other k-quants: `UNAVAILABLE` says what to run instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from underdog.errors import ConfigError
from underdog.train import kquants


@dataclass(frozen=True)
class Quant:
    file_type: gguf.LlamaFileType
    matrix: gguf.GGMLQuantizationType  # what 2-D weights are stored as (1-D tensors stay F32)


QUANTS = {
    "f32": Quant(gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "f16": Quant(gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "q8_0": Quant(gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
    "q4_k_m": Quant(gguf.LlamaFileType.MOSTLY_Q4_K_M, kquants.Q4_K),  # per tensor: kquants.q4_k_m_type
}
UNAVAILABLE = {  # asked for often, and not written here
    name: "no quantizer for it here (q4_k_m is): write f16 here, then run llama.cpp's "
          f"`llama-quantize model-f16.gguf model-{name}.gguf {name.upper()}`"
    for name in ("q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k")
}


@dataclass(frozen=True)
class Arch:
    gguf: gguf.MODEL_ARCH
    permute_qk: bool  # llama.cpp's Llama graph expects q/k rows interleaved per head (convert_hf_to_gguf.py)


ARCHS = {
    "LlamaForCausalLM": Arch(gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "Qwen2ForCausalLM": Arch(gguf.MODEL_ARCH.QWEN2, permute_qk=False),
}

# llama.cpp names a BPE pre-tokenizer by the hash of how it splits this text (convert_hf_to_gguf.py's
# get_vocab_base_pre); the few below are the small students underdog is used with.
CHECK_TEXT = ('\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\U0001f680 (normal) \U0001f636\u200d\U0001f32b\ufe0f '
              '(multiple emojis concatenated) \u2705 \U0001f999\U0001f999 3 33 333 3333 33333 333333 3333333 33333333 '
              '3.3 3..3 3...3 \u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785'
              '\U0001f601 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======= '
              '\u043d\u0435\u0449\u043e '
              '\u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 \'\'\'\'\'\'```````""""......!!!!!!'
              '?????? I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? '
              'We\'Ve a\'lL')
PRE_TOKENIZERS = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM, SmolLM2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama 3
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5, Qwen2, Qwen2.5
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3
}
DEFAULT_PRE = "default"  # llama.cpp's fallback (it warns that generation may degrade)


def check_exportable(model: Any, quant: str) -> Arch:
    """The architecture entry of a model (a transformers model, or its config), or one ConfigError line (exit 2)
    for an architecture, rope scaling or quantization this exporter cannot write."""
    if quant in UNAVAILABLE:
        raise ConfigError(f"--quant {quant}: cannot be produced here: {UNAVAILABLE[quant]}")
    if quant not in QUANTS:
        raise ConfigError(f"--quant {quant}: use one of {', '.join(QUANTS)}")
    config = getattr(model, "config", model)
    names = list(getattr(config, "architectures", None) or [type(model).__name__])
    arch = next((ARCHS[n] for n in names if n in ARCHS), None)
    if arch is None:
        raise ConfigError(f"architecture {', '.join(names)}: the GGUF exporter knows {', '.join(ARCHS)}")
    rope = _rope(config)
    if rope.get("rope_type", "default") != "default":
        raise ConfigError(f"rope scaling {rope['rope_type']!r} ({names[0]}): the GGUF exporter writes plain rope only")
    return arch


def write_gguf(model: Any, tokenizer_dir: Path, out: Path, quant: str = "q8_0", name: str = "") -> int:
    """Write `model` (a transformers causal LM; its tokenizer files in `tokenizer_dir`) to `out` as GGUF in
    `quant`; returns the file's size in bytes."""
    config = model.config
    arch = check_exportable(model, quant)
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch.gguf])
    _add_hyperparameters(writer, config, name, QUANTS[quant])
    _add_tokenizer(writer, tokenizer_dir, config.vocab_size)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for gguf_name, data in _tensors(model, arch):
        matrix = QUANTS[quant].matrix
        if quant == "q4_k_m" and data.ndim == 2:
            matrix = kquants.q4_k_m_type(gguf_name, data.shape[-1], config.num_hidden_layers, tied)
        _add_tensor(writer, gguf_name, data, matrix)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out.stat().st_size


def _rope(config: Any) -> dict[str, Any]:
    """The rope settings (transformers 5: `rope_parameters`; before: `rope_theta` / `rope_scaling`)."""
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params


def _add_hyperparameters(writer: gguf.GGUFWriter, config: Any, name: str, quant: Quant) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(_rope(config)["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(quant.file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(writer: gguf.GGUFWriter, tokenizer_dir: Path, vocab_size: int) -> None:
    """A byte-level BPE tokenizer as llama.cpp's `gpt2` tokenizer model (the token list, token types and the
    pre-tokenizer's name), then merges, special token ids and chat template through `gguf.SpecialVocab`."""
    from transformers import AutoTokenizer  # heavy: only when a model is exported

    spec = json.loads((tokenizer_dir / "tokenizer.json").read_text()) if (tokenizer_dir / "tokenizer.json").exists() \
        else {}
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        kind = model.get("type") or "without tokenizer.json"
        raise ConfigError(f"tokenizer {kind} ({tokenizer_dir}): the GGUF exporter writes byte-level BPE tokenizers "
                          "only (SmolLM, Llama 3, Qwen)")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokens, types = _token_list(tokenizer, vocab_size)
    digest = sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZERS.get(digest, DEFAULT_PRE))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)


def _token_list(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Every id's token text and GGUF token type (added special tokens: CONTROL; other added: USER_DEFINED;
    ids the tokenizer lacks: UNUSED padding), as convert_hf_to_gguf.py's get_vocab_base."""
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _tensors(model: Any, arch: Arch) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array) of every weight, tied output weights once, q/k permuted where llama.cpp wants."""
    config = model.config
    names = gguf.get_tensor_name_map(arch.gguf, config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or \
        config.num_attention_heads
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ConfigError(f"tensor {hf_name}: no GGUF name for it in {arch.gguf.name.lower()}")
        data = tensor.detach().float().cpu().numpy()
        if arch.permute_qk and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            data = _permute(data, heads if "q_proj" in hf_name else kv_heads)
        yield gguf_name, data


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotary halves -> llama.cpp's interleaved pairs, per head (convert_hf_to_gguf.py's LlamaModel.permute)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2) \
        .reshape(weights.shape)


def _add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, matrix: gguf.GGMLQuantizationType) -> None:
    """1-D tensors as F32; matrices as `matrix`, falling back to F16 where a row does not split into q8_0's
    32-value blocks (as the converter does)."""
    qtype = gguf.GGMLQuantizationType.F32 if data.ndim < 2 else matrix
    if qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        qtype = gguf.GGMLQuantizationType.F16
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, data.astype(np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, data.astype(np.float16))
    else:
        writer.add_tensor(name, kquants.quantize(data, qtype), raw_dtype=qtype)
