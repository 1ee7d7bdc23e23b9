"""Stop strings cost a bounded amount per generated token: the generation check decodes only the last few tokens
of each row (no pass over the vocabulary per stop string), and a stream searches only its newest piece."""

from __future__ import annotations

from pathlib import Path

import pytest

from underdog.config import GenerationParams
from underdog.llm import stops
from underdog.llm.local import generate, load_model
from underdog.llm.stops import StopStrings, StreamCut, cut_at_stop

ASK = [{"role": "user", "content": "hello there"}]


def test_stream_cut_holds_back_a_stop_string_split_over_pieces() -> None:
    cut = StreamCut(["\nQ:"])
    sent = [cut.feed(p) for p in ["Paris is", " big.\n", "Q", ": next"]]
    assert "".join(sent) == "Paris is big." and cut.stopped and cut.reply == "Paris is big."
    assert cut.feed("more") == "" and cut.flush() == ""
    plain = StreamCut(["###"])
    assert "".join([plain.feed("a#"), plain.feed("#b"), plain.flush()]) == "a##b" and not plain.stopped


def test_stream_cut_searches_only_the_new_piece_and_what_is_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    searched = []
    find = stops.find_stop
    monkeypatch.setattr(stops, "find_stop", lambda text, stop, start=0: searched.append(len(text) - start)
                        or find(text, stop, start))
    cut = StreamCut(["never-seen", "END"])
    text = "".join(cut.feed(f"word{i} ") for i in range(5000))
    assert text + cut.flush() == "".join(f"word{i} " for i in range(5000))
    assert max(searched) <= len("never-seen") - 1 + len("word4999 ")  # not the 40,000 characters so far


def test_generation_stops_at_a_stop_string_decoding_only_a_bounded_tail(tiny_llama_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model(str(tiny_llama_dir))
    greedy = GenerationParams(temperature=0, max_tokens=120)
    full = generate(loaded, [ASK], greedy)[0]
    assert full.output_tokens == 120, "the tiny model should not end by itself"
    stop = full.text[len(full.text) // 2:][:6]
    tok = loaded.tokenizer
    decoded: list[int] = []
    decode = tok.decode
    monkeypatch.setattr(tok, "decode", lambda ids, **kw: decoded.append(len(ids)) or decode(ids, **kw))
    monkeypatch.setattr(tok, "get_vocab", lambda: pytest.fail("a pass over the vocabulary per stop string"))
    never = "not in this reply"
    replies = generate(loaded, [ASK, ASK], greedy.model_copy(update={"stop": [stop]}))
    unstopped = generate(loaded, [ASK], greedy.model_copy(update={"stop": [never]}))[0]
    assert replies[0].text == cut_at_stop(full.text, [stop])[0].strip() and replies[0].finish_reason == "stop"
    assert replies[0].output_tokens < 120 and replies[1] == replies[0]
    assert unstopped.output_tokens == 120 and unstopped.text == full.text
    checks = decoded[:-3]  # the last three decode whole replies
    assert len(checks) <= 2 * replies[0].output_tokens + 120  # one check per row and token
    assert max(checks) <= 4 * len(never) + 1 < 120  # a bounded tail, not the reply so far


def test_the_tail_widens_for_multi_byte_characters(tiny_llama_dir: Path) -> None:
    tok = load_model(str(tiny_llama_dir)).tokenizer
    ids = tok("intro " + "日本語のテキスト" * 4, add_special_tokens=False)["input_ids"]
    assert StopStrings(tok, ["日本語のテキスト日本"], 0).hit(ids)
    assert not StopStrings(tok, ["intro"], 3).hit(ids)  # the prompt (first `width` tokens) never counts
