"""Preference dataset versions: the format supervised and preference training agree on."""

from __future__ import annotations

import json

import pytest

from underdog.data.dataset import Example, load_dataset, load_manifest, save_dataset
from underdog.data.preferences import PreferencePair, load_preferences, save_preferences, to_trl
from underdog.errors import UnderdogError

PROMPT = [{"role": "user", "content": "When is the dog licence due?"}]


def pair(chosen: str = "By March 1 (form HC-12).", rejected: str = "Soon.") -> PreferencePair:
    return PreferencePair(PROMPT, chosen, rejected, {"source": "votes", "weight": 0.5})


def test_pairs_round_trip_with_kind_and_weight(tmp_path):
    manifest = save_preferences(tmp_path, "prefs", [pair(), pair(rejected="Ask someone.")], parent="votes",
                                recipe={"command": "preferences"})
    assert manifest.kind == "preference" and manifest.count == 2
    assert json.loads((tmp_path / "datasets" / "prefs" / "manifest.json").read_text())["kind"] == "preference"
    pairs = load_preferences(tmp_path, "prefs")
    assert [p.rejected for p in pairs] == ["Soon.", "Ask someone."]
    assert pairs[0].question == "When is the dog licence due?" and pairs[0].weight == 0.5
    assert to_trl(pairs[0]) == {"prompt": PROMPT,
                                "chosen": [{"role": "assistant", "content": "By March 1 (form HC-12)."}],
                                "rejected": [{"role": "assistant", "content": "Soon."}]}


def test_each_loader_refuses_the_other_kind(tmp_path):
    save_preferences(tmp_path, "prefs", [pair()])
    save_dataset(tmp_path, "sft", [Example([*PROMPT, {"role": "assistant", "content": "March 1."}])])
    with pytest.raises(UnderdogError, match="'prefs' holds preference data.*train --method dpo"):
        load_dataset(tmp_path, "prefs")
    with pytest.raises(UnderdogError, match="'sft' holds sft data.*`underdog train` \\(supervised\\)"):
        load_preferences(tmp_path, "sft")
    assert load_manifest(tmp_path, "sft").kind == "sft"


def test_no_pair_writes_nothing_and_a_bad_line_names_itself(tmp_path):
    with pytest.raises(UnderdogError, match="no pair"):
        save_preferences(tmp_path, "empty", [])
    assert not (tmp_path / "datasets" / "empty").exists()
    save_preferences(tmp_path, "prefs", [pair()])
    data = tmp_path / "datasets" / "prefs" / "data.jsonl"
    data.write_text(data.read_text() + json.dumps({"id": "x", "prompt": PROMPT, "chosen": "yes"}) + "\n")
    with pytest.raises(UnderdogError, match=r"data.jsonl:2: malformed preference pair \(missing 'rejected'\)"):
        load_preferences(tmp_path, "prefs")


def test_manifest_written_before_kinds_existed_reads_as_sft(tmp_path):
    save_dataset(tmp_path, "old", [Example([*PROMPT, {"role": "assistant", "content": "March 1."}])])
    path = tmp_path / "datasets" / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["kind"]
    path.write_text(json.dumps(manifest))
    assert load_manifest(tmp_path, "old").kind == "sft" and len(load_dataset(tmp_path, "old")) == 1
