"""The winner leaves as GGUF (+ an Ollama Modelfile) with a model card, and can be pushed to a hub: GGUF files
loaded back by transformers' GGUF loader answer like the merged model, the card reads the project's stores, and
the push goes through huggingface_hub to a stand-in hub on loopback."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gguf
import pytest
import torch
from gguf import GGUFReader
from huggingface_hub import ModelCard, constants
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config

from hub_standin import Hub, hub_app
from test_train import arithmetic, use_student
from underdog.arena import votes
from underdog.arena.prepare import add_candidate
from underdog.data.dataset import load_manifest, save_dataset
from underdog.evaluate.evalset import import_evalset
from underdog.evaluate.judge import judge
from underdog.project import Project, init_project
from underdog.train import kquants
from underdog.train.card import write_model_card
from underdog.train.gguf_file import CHECK_TEXT, PRE_TOKENIZERS, write_gguf
from underdog.train.lora import train
from underdog.train.merge import merge_run, merged_model
from underdog.train.runs import load_run, save_manifest
from underdog.tune.prompt import Cell, Prompt, TuneResult, report_dir, write_report

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

RUN = "tiny-run"
IDS = torch.tensor([[1, 4093, 198, 26843, 665, 2, 504, 3458, 314]])
# max |logits difference| / max |logit| after the round trip, per quantization
TOLERANCE = {"f32": 1e-5, "f16": 0.01, "q8_0": 0.06}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, learnable_llama_dir: Path) -> Path:
    """A project whose run `tiny-run` trained a LoRA adapter on the tiny Llama."""
    root = tmp_path_factory.mktemp("export") / "proj"
    init_project("arithmetic", root)
    project = use_student(root, learnable_llama_dir)
    save_dataset(root, "arith", arithmetic(12), recipe={"source": "arithmetic(12)"})
    train(project, "arith", ["epoch=1", "learning_rate=1e-2", "per_device_train_batch_size=4"], run_id=RUN)
    return root


def _error(model: torch.nn.Module, reference: torch.Tensor, ids: torch.Tensor = IDS) -> float:
    with torch.no_grad():
        got = model(input_ids=ids).logits
    return ((got - reference).abs().max() / reference.abs().max()).item()


@pytest.fixture(scope="module")
def small_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """A 300-token byte-level BPE tokenizer with SmolLM2's chat template: GGUF files with a vocabulary this small
    load in a second (the GGUF reader parses 49k tokens and merges in Python: ~15 s a load)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([f"What is {i} plus {i}? The answer is {2 * i}." for i in range(50)],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                                "<|im_end|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = AutoTokenizer.from_pretrained(tiny_llama_dir).chat_template
    out = tmp_path_factory.mktemp("small-tokenizer")
    tokenizer.save_pretrained(out)
    return out


def _small_model(kind: str, vocab_size: int, hidden: int = 64, layers: int = 2) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config, cls = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
    torch.manual_seed(0)
    model = cls(config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       tie_word_embeddings=True, initializer_range=0.15)).eval()
    if kind == "qwen2":  # its q/k/v biases start at zero: give them values the round trip must keep
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.data.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_gguf_round_trip_matches_the_model_per_quantization(kind: str, small_tokenizer_dir: Path,
                                                            tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(small_tokenizer_dir)
    model = _small_model(kind, len(tokenizer))
    ids = tokenizer("What is 7 plus 7? The answer is", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(input_ids=ids).logits
    sizes = {}
    for quant, tolerance in TOLERANCE.items():
        sizes[quant] = write_gguf(model, small_tokenizer_dir, tmp_path / f"m-{quant}.gguf", quant, name="tiny")
        back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=f"m-{quant}.gguf").eval()
        assert _error(back, reference, ids) <= tolerance, quant
    assert sizes["q8_0"] < sizes["f16"] < sizes["f32"]
    reader = GGUFReader(tmp_path / "m-q8_0.gguf")
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == kind and fields["general.file_type"] == 7
    assert fields["tokenizer.ggml.tokens"] == list(tokenizer.convert_ids_to_tokens(range(len(tokenizer))))
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "default"  # hash unknown
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert "output.weight" not in types  # tied to token_embd, as llama.cpp expects
    back = AutoTokenizer.from_pretrained(tmp_path, gguf_file="m-q8_0.gguf")
    assert back("What is 7 plus 7?").input_ids == tokenizer("What is 7 plus 7?").input_ids


def test_q4_k_m_file_holds_llama_cpp_s_recipe_and_loads_back(small_tokenizer_dir: Path, tmp_path: Path) -> None:
    """A random 8-layer model magnifies 4-bit noise (bench/gguf_roundtrip.py measures a trained one), so the check
    is exactness: the file loads back as the model with each matrix quantized by the recipe's type, in torch."""
    tokenizer = AutoTokenizer.from_pretrained(small_tokenizer_dir)
    model = _small_model("llama", len(tokenizer), hidden=256, layers=8)
    ids = tokenizer("What is 7 plus 7? The answer is", return_tensors="pt").input_ids
    write_gguf(model, small_tokenizer_dir, tmp_path / "m-q4_k_m.gguf", "q4_k_m", name="tiny")
    write_gguf(model, small_tokenizer_dir, tmp_path / "m-q8_0.gguf", "q8_0", name="tiny")

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 8)
    with torch.no_grad():
        for name, param in model.named_parameters():  # q/k rows are permuted in the file: per-row blocks commute
            if param.ndim == 2:
                qtype = kquants.q4_k_m_type(names.get_name(name, try_suffixes=(".weight",)), param.shape[1], 8,
                                            tied_output=True)
                param.copy_(torch.from_numpy(gguf.quants.dequantize(kquants.quantize(param.numpy(), qtype), qtype)))
        expected = model(input_ids=ids).logits
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="m-q4_k_m.gguf").eval()
    assert _error(back, expected, ids) < 1e-4

    reader = GGUFReader(tmp_path / "m-q4_k_m.gguf")
    assert reader.fields["general.file_type"].contents() == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["token_embd.weight"] == "Q6_K"  # tied to the output, as llama.cpp does
    assert types["blk.1.attn_q.weight"] == "Q4_K" and types["blk.0.attn_v.weight"] == "Q6_K"
    assert types["blk.1.ffn_down.weight"] == "Q4_K" and types["blk.7.ffn_down.weight"] == "Q6_K"
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert (tmp_path / "m-q4_k_m.gguf").stat().st_size < 0.7 * (tmp_path / "m-q8_0.gguf").stat().st_size


def test_smollm2_tokenizer_gets_llama_cpp_s_pre_tokenizer_name(tiny_llama_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)  # SmolLM2's
    digest = hashlib.sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    assert PRE_TOKENIZERS[digest] == "smollm"  # what llama.cpp's converter writes for SmolLM2


def test_export_model_cli_ollama_and_its_errors(trained: Path, cli, tmp_path: Path) -> None:
    project = Project(trained)
    cell = Cell(Prompt("sums", "You answer sums with one number."), 0.3, 0.9, outcomes=["first", "tie", "first"])
    best = write_report(TuneResult(RUN, "arith-eval", "student", 1, [cell]), report_dir(project, RUN))["best"]

    result = cli("-C", trained, "export-model", RUN, "--format", "ollama", "--quant", "q8_0")
    assert result.exit_code == 0, result.output
    folder = trained / "runs" / RUN / "export-q8_0"
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile", "README.md", f"{RUN}-q8_0.gguf"]
    modelfile = (folder / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./{RUN}-q8_0.gguf\n")
    assert 'SYSTEM """You answer sums with one number."""' in modelfile
    assert "PARAMETER temperature 0.3\n" in modelfile and "PARAMETER top_p 0.9\n" in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    # the ChatML the Modelfile's Go template writes is what the tokenizer's Jinja template writes
    chat = AutoTokenizer.from_pretrained(trained / "runs" / RUN / "adapter").apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], tokenize=False,
        add_generation_prompt=True)
    assert chat == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    assert str(best.relative_to(trained)) in (folder / "README.md").read_text()

    merged, _ = merged_model(project, RUN, dtype="float32")
    with torch.no_grad():
        reference = merged(input_ids=IDS).logits
    back = AutoModelForCausalLM.from_pretrained(folder, gguf_file=f"{RUN}-q8_0.gguf").eval()
    assert _error(back, reference) <= TOLERANCE["q8_0"]  # the trained adapter survives the round trip

    result = cli("-C", trained, "export-model", RUN, "--quant", "q5_k_m")
    assert result.exit_code == 2 and "llama-quantize" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert (folder / f"{RUN}-q8_0.gguf").exists()  # what was exported before is kept

    other = trained / "runs" / "gpt2-run"  # a run whose base model's architecture the exporter does not know
    shutil.copytree(trained / "runs" / RUN, other, ignore=shutil.ignore_patterns("export-*"))
    GPT2Config(n_layer=1, n_embd=32, n_head=2, architectures=["GPT2LMHeadModel"]).save_pretrained(tmp_path / "gpt2")
    run = load_run(trained, RUN)
    run.id, run.base_model = "gpt2-run", str(tmp_path / "gpt2")
    save_manifest(trained, run)
    result = cli("-C", trained, "export-model", "gpt2-run")
    assert result.exit_code == 2 and "architecture GPT2LMHeadModel" in result.output
    assert len(result.output.strip().splitlines()) == 1
    shutil.rmtree(other)


def test_model_card_reads_the_stores(trained: Path, tmp_path: Path) -> None:
    questions = tmp_path / "eval.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"question": "What is 3 plus 3?", "facts": ["6"]}, {"question": "What is 4 plus 4?", "facts": ["8"]},
        {"question": "Who will win the next election?", "expect": "refusal"}]) + "\n")
    project = Project(trained, overrides=["evaluate.answer_max_tokens=6"])
    import_evalset(project, questions, name="arith-eval")
    result = judge(project, RUN, "student", "arith-eval", judges=["facts"], progress=False)
    add_candidate(project, RUN, name="mine", evalset="arith-eval", progress=False)
    add_candidate(project, "student", name="base", evalset="arith-eval", progress=False)
    voter = votes.Sessions("organiser-token").new("judge")
    question = project.store.query("SELECT question_id FROM arena_items LIMIT 1")[0][0]
    votes.record_vote(project.store, voter, votes.Ballot("b1", voter.id, question, "mine", "base"), "A")

    card = ModelCard.load(write_model_card(project, RUN, tmp_path / "card"))
    assert card.data.library_name == "transformers" and "lora" in card.data.tags and card.data.base_model is None
    text = card.text
    hp = load_run(trained, RUN).hyperparameters
    assert f"| lora_r | {hp['lora_r']} |" in text and f"| learning_rate | {hp['learning_rate']} |" in text
    assert f"`{load_manifest(trained, 'arith').sha256}`" in text and '"source": "arithmetic(12)"' in text
    row = dict(project.store.query("SELECT * FROM judge_results WHERE candidate = ?", [RUN])[0])
    assert f"{100 * row['win_rate']:.1f}% ({100 * row['ci_low']:.1f}%-{100 * row['ci_high']:.1f}%)" in text
    assert f"| {row['wins']}/{row['ties']}/{row['losses']} |" in text
    assert f"`{row['config_id']}`" in text and "judges facts-v1" in text
    assert "3 held-out questions, 2 facts to state, 1 refusal probe (" in text
    assert (f"{100 * result.recall.fact_recall:.1f}% ({100 * row['fact_recall_low']:.1f}%-"
            f"{100 * row['fact_recall_high']:.1f}%)") in text
    assert "## Arena" in text and "| mine |" in text and "| base |" not in text
    recall = json.loads(row["grounded"])["recall"]
    assert f"answered {recall['probes'] - recall['refused']} of 1 refusal probe on" in text

    merged = merge_run(project, RUN, tmp_path / "merged")  # `underdog merge` writes the card beside the weights
    assert ModelCard.load(merged / "README.md").data.library_name == "transformers"


def test_push_to_a_stand_in_hub(trained: Path, cli, serve_app, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hf_standinTOKEN0123456789abcdef"
    hub = Hub(token)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this hub is on loopback
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the stand-in speaks the LFS protocol, not Xet
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with serve_app(hub_app(hub)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        result = cli("-C", trained, "export-model", RUN, "--quant", "f16", "--push", "me/tiny-gguf")
        assert result.exit_code == 2 and "HF_TOKEN" in result.output and not hub.repos

        monkeypatch.setenv("HF_TOKEN", token)
        for bad in ("me/tiny gguf", "me/a/b"):  # said before the export, not after it
            result = cli("-C", trained, "export-model", RUN, "--quant", "f16", "--push", bad)
            assert result.exit_code == 2 and f"--push {bad}: not a repository id" in result.output, result.output
            assert len(result.output.strip().splitlines()) == 1 and token not in result.output
        assert not (trained / "runs" / RUN / "export-f16").exists() and not hub.repos
        result = cli("-C", trained, "export-model", RUN, "--quant", "f16", "--push", "me/tiny-gguf")
        assert result.exit_code == 0, result.output
        folder = trained / "runs" / RUN / "export-f16"
        pushed = hub.repos["me/tiny-gguf"]
        assert sorted(pushed) == sorted(p.name for p in folder.iterdir()) == ["README.md", f"{RUN}-f16.gguf"]
        for name, data in pushed.items():
            assert hashlib.sha256(data).digest() == hashlib.sha256((folder / name).read_bytes()).digest()
        assert f"{RUN}-f16.gguf" in {n for n in pushed if hashlib.sha256(pushed[n]).hexdigest() in hub.lfs}

        wrong = "hf_wrongTOKEN9876543210fedcba"
        monkeypatch.setenv("HF_TOKEN", wrong)
        result = cli("-C", trained, "merge", RUN, "--push", "me/tiny-merged")
        assert result.exit_code == 1 and "push to me/tiny-merged failed" in result.output
        assert wrong not in result.output and "Traceback" not in result.output
        assert "me/tiny-merged" not in hub.repos
        assert (trained / "runs" / RUN / "merged" / "README.md").exists()  # merged before the push failed
    result = cli("-C", trained, "merge", RUN, "--push", "me/tiny-merged")  # the stand-in hub is gone
    assert result.exit_code == 1 and "push to me/tiny-merged failed: ConnectError" in result.output
    assert hub.validated and hub.validated[0]["tags"][-1] == "gguf"  # the card's metadata was checked before the commit


def test_failed_export_leaves_nothing_half_written_and_keeps_what_was_there(trained: Path, cli, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from underdog.train import export

    out = tmp_path / "exp"
    assert cli("-C", trained, "export-model", RUN, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    leftovers = lambda: sorted(p.name for p in tmp_path.iterdir() if p.name != "exp")  # noqa: E731

    best = tmp_path / "best.yaml"  # a system prompt a Modelfile cannot quote: found before the merge
    best.write_text('system_prompt: \'Say """ once.\'\ntemperature: 0.2\n')
    result = cli("-C", trained, "export-model", RUN, "--format", "ollama", "--settings", best, "--out", out)
    assert result.exit_code == 2 and 'holds """' in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert leftovers() == ["best.yaml"] and {p.name: p.read_bytes() for p in out.iterdir()} == before

    def interrupted(*args, **kwargs) -> int:  # a simulated Ctrl-C once the new GGUF is written
        written = write_gguf(*args, **kwargs)
        assert written > 0 and args[2].exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "write_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(Project(trained), RUN, "gguf", "f16", out=out)
    assert leftovers() == ["best.yaml"] and {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()

    mine = tmp_path / "mine"  # an --out that holds something else is not replaced
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = cli("-C", trained, "export-model", RUN, "--out", mine)
    assert result.exit_code == 2 and "notes.txt" in result.output and len(result.output.strip().splitlines()) == 1
    assert (mine / "notes.txt").read_text() == "keep me" and [p.name for p in mine.iterdir()] == ["notes.txt"]
