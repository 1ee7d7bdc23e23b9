"""Curation's semantic pass (issue 19): paraphrases that MinHash misses, caught by embeddings at the defaults.

The planted set (tests/data/planted_paraphrases.jsonl, written by hand for this test): 10 eval questions, a
paraphrase of each, 10 training questions, a paraphrase of each, and 12 look-alikes (same topic and words as one
of them, a different question) that must stay. bench/planted_paraphrases.py measures the same set mixed into a
real 966-record Q&A set, per threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from underdog.config import CurateConfig
from underdog.data.curation import Report, curate, decontaminate, deduplicate, semantic_pass
from underdog.data.dataset import Example, save_dataset
from underdog.data.semantic import closest, semantic_duplicates
from underdog.project import Project

PLANTED = Path(__file__).parent / "data" / "planted_paraphrases.jsonl"


def planted() -> tuple[list[dict], list[Example]]:
    """(eval questions, training examples: originals first, then paraphrases and look-alikes)."""
    rows = [json.loads(line) for line in PLANTED.read_text().splitlines()]
    evals = [{"evalset": "heldout", "id": r["id"], "question": r["question"]} for r in rows if r["kind"] == "eval"]
    order = {"train": 0, "eval_paraphrase": 1, "train_paraphrase": 1, "lookalike": 1}
    train = sorted((r for r in rows if r["kind"] != "eval"), key=lambda r: order[r["kind"]])
    answer = "A placeholder answer, long enough for the hygiene step."  # only the questions are compared
    return evals, [Example([{"role": "user", "content": r["question"]}, {"role": "assistant", "content": answer}],
                           {"planted": r["id"], "of": r.get("of")}) for r in train]


def naive(vectors: torch.Tensor, threshold: float) -> list[int | None]:
    kept: list[int] = []
    found: list[int | None] = []
    for i, row in enumerate(vectors):
        sims = [(float(row @ vectors[j]), -j) for j in kept]
        best = max(sims, default=(-1.0, 0))
        found.append(-best[1] if best[0] >= threshold else None)
        if found[-1] is None:
            kept.append(i)
    return found


def test_semantic_duplicates_match_the_all_pairs_walk_across_blocks() -> None:
    torch.manual_seed(0)
    originals = torch.randn(40, 16)
    noisy = originals[torch.randint(0, 40, (160,))] + 0.35 * torch.randn(160, 16)
    vectors = torch.nn.functional.normalize(torch.cat([originals, noisy])[torch.randperm(200)], dim=-1)
    expected = naive(vectors, 0.8)
    assert 30 < sum(m is not None for m in expected) < 170
    for block, coarse in ((7, False), (64, False), (1000, False), (7, True), (64, True)):
        found = semantic_duplicates(vectors, 0.8, block=block, coarse=coarse)  # coarse: bf16 search, fp32 check
        assert [m and m[0] for m in found] == expected
        assert all(m is None or abs(m[1] - float(vectors[i] @ vectors[m[0]])) < 1e-5 for i, m in enumerate(found))
    assert closest(vectors[:3], vectors[:0], 0.5) == [None] * 3
    assert [m and m[0] for m in closest(vectors[:5], vectors[:5], 0.999)] == [0, 1, 2, 3, 4]


def test_the_bf16_search_decides_pairs_at_the_threshold_as_float32_does() -> None:
    torch.manual_seed(1)
    # bf16 has 0.796875 and 0.80078125 here, the midpoint 0.798828125: a threshold just above it is 0.80078125 in
    # bf16, and a cosine just above the threshold whose bf16 inputs err downwards rounds to 0.796875
    threshold = 0.79884
    cosines = torch.linspace(threshold - 2e-4, threshold + 2e-4, 200)
    u = torch.nn.functional.normalize(torch.randn(200, 384), dim=-1)
    w = torch.randn(200, 384)
    w = torch.nn.functional.normalize(w - (w * u).sum(1, keepdim=True) * u, dim=-1)  # orthogonal to u
    pairs = torch.stack([u, cosines[:, None] * u + (1 - cosines[:, None] ** 2).sqrt() * w], dim=1).reshape(400, 384)
    exact = semantic_duplicates(pairs, threshold, coarse=False)
    assert sum(m is not None for m in exact) == int((cosines >= threshold).sum())
    coarse = semantic_duplicates(pairs, threshold, coarse=True)
    assert [m and m[0] for m in coarse] == [m and m[0] for m in exact]
    assert all(a is None or abs(a[1] - b[1]) < 1e-6 for a, b in zip(coarse, exact, strict=True))


@pytest.mark.slow
def test_default_thresholds_catch_the_planted_paraphrases_that_minhash_misses(project_dir: Path, cli) -> None:
    evals, train = planted()
    defaults = CurateConfig()
    minhash = Report(len(train))
    after_words = decontaminate(deduplicate(train, minhash, defaults.near_dup_threshold), evals, minhash,
                                defaults.decontam_threshold)
    assert len(after_words) >= len(train) - 2  # words alone: at most 2 of the 20 paraphrases

    report = Report(len(train))
    kept = semantic_pass(train, evals, report, defaults.semantic_dup_threshold, defaults.semantic_decontam_threshold)
    dropped = {m["question"]: m for m in report.matches}
    ids = {e.question: e.meta["planted"] for e in train}
    caught = {ids[q] for q in dropped}
    assert {f"ep{i}" for i in range(1, 11)} <= caught  # every eval paraphrase
    assert len({f"tp{i}" for i in range(1, 11)} & caught) >= 6  # see docs/data.md: 6 of 10 at 0.86
    assert all(ids[q].startswith(("ep", "tp")) for q in dropped)  # no original, no look-alike
    for example in train:  # each drop names the question it repeats, with its similarity
        if example.question in dropped:
            match = dropped[example.question]
            assert match["matched"] == ("heldout/" + example.meta["of"] if match["reason"] == "semantic_contamination"
                                        else "example") and match["measure"] == "cosine"
            assert match["similarity"] >= 0.8
    assert len(kept) == len(train) - len(dropped)

    project = Project(project_dir)
    save_dataset(project.root, "planted", train, parent=None, recipe={"command": "test"}, counts={})
    (project.evalsets_dir / "heldout").mkdir(parents=True)
    (project.evalsets_dir / "heldout" / "questions.jsonl").write_text(
        "".join(json.dumps({"id": q["id"], "question": q["question"]}) + "\n" for q in evals))
    _, result = curate(project, "planted", rate=False)
    written = json.loads((project.dataset_dir("planted-curated") / "curation.json").read_text())
    assert written["matches"] == result["matches"] and result["removed"]["semantic_contamination"] >= 9
    assert result["kept"] == len(train) - len(result["matches"])
    _, words_only = curate(project, "planted", "words-only", rate=False, semantic=False)
    assert "semantic_contamination" not in words_only["removed"]
    result = cli("curate", "planted", "--name", "strict", "--no-rate", "--semantic-dup", "0.9",
                 "--semantic-decontam", "0.9")
    assert result.exit_code == 0 and "semantic_contamination" in result.output, result.output
    strict = json.loads((project.dataset_dir("strict") / "curation.json").read_text())["removed"]
    assert strict["semantic_contamination"] == 2 and strict["semantic_duplicate"] == 2  # cosine >= 0.9 only
