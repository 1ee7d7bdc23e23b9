"""tune-prompt over real OpenAI-compatible servers on loopback (real openai SDK), and on real local models."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from conftest import invoke_cli
from underdog.config import ModelSpec
from underdog.errors import ConfigError
from underdog.evaluate.evalset import Question, save_evalset
from underdog.evaluate.leaderboard import leaderboard
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread
from underdog.tune.prompt import Prompt, load_prompts, record_best, tune_prompt, write_report

QUESTIONS = [f"How do I renew permit number {i}?" for i in range(4)]
SENTENCE = "Go to the permit office."
PROMPTS = [Prompt("curt", "Be curt."), Prompt("plain", ""), Prompt("detailed", "Answer in detail.")]


class Student:
    """Answers get longer with a 'detailed' prompt, a higher temperature, and an odd seed (best-of-n samples)."""

    def __init__(self) -> None:
        self.fake = ScriptedOpenAI(self.reply, model="student")

    def reply(self, messages: list[dict]) -> str:
        body = self.fake.bodies[-1]  # concurrency 1: the request being answered
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if "curt" in system:
            return "Office."
        k = (3 if "detail" in system else 1) + (body["temperature"] >= 0.7) + (body.get("seed", 0) % 2)
        return " ".join([SENTENCE] * k)


def prefers_longer(messages: list[dict]) -> str:
    text = messages[-1]["content"]
    first = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", text, re.S).group(1)
    second = re.search(r"\[Answer B\]\n(.*?)\n\n", text, re.S).group(1)
    return json.dumps({"reason": "longer", "verdict": "A" if len(first) > len(second) else "B"})


@pytest.fixture
def fakes() -> Iterator[dict[str, tuple[ScriptedOpenAI, str]]]:
    student = Student().fake
    fakes = {"student": student, "reference": ScriptedOpenAI(lambda m: f"{SENTENCE} {SENTENCE}", model="reference"),
             "judge": ScriptedOpenAI(prefers_longer, model="judge")}
    with ExitStack() as stack:
        yield {name: (fake, stack.enter_context(ServerThread(fake.app)).url + "/v1") for name, fake in fakes.items()}


def model_specs(fakes: dict) -> dict[str, dict]:
    return {name: {"provider": "openai", "base_url": url, "model": name, "max_retries": 0,
                   "concurrency": 1 if name == "student" else 4} for name, (_, url) in fakes.items()}


@pytest.fixture
def project(project_dir: Path, fakes: dict) -> Project:
    proj = Project(project_dir)
    proj.config.models.update({k: ModelSpec(**v) for k, v in model_specs(fakes).items()})
    save_evalset(proj, "ev", [Question(f"q{i}", q) for i, q in enumerate(QUESTIONS)], source="test")
    return proj


def test_grid_ranks_cells_and_writes_the_report(project: Project, fakes: dict, tmp_path: Path) -> None:
    result = tune_prompt(project, "student", PROMPTS, [0.3, 0.9], [1.0], evalset="ev", progress=False)
    rates = {(c.prompt.name, c.temperature): c.win_rate for c in result.cells}
    # Reference: 2 sentences. Longer wins, same length is a tie (the judge flips with the order).
    assert rates == {("curt", 0.3): 0.0, ("curt", 0.9): 0.0, ("plain", 0.3): 0.0, ("plain", 0.9): 0.5,
                     ("detailed", 0.3): 1.0, ("detailed", 0.9): 1.0}
    ranked = result.ranked()
    assert [c.prompt.name for c in ranked[:2]] == ["detailed", "detailed"] and ranked[-1].win_rate == 0.0
    assert ranked[0].temperature == 0.3  # equal win rates: the shorter answers rank first
    assert all(c.n == 4 for c in result.cells) and ranked[0].ci[0] > 0.4
    sent = fakes["student"][0].bodies
    assert {(b["messages"][0]["content"] if b["messages"][0]["role"] == "system" else "", b["temperature"],
             b["top_p"]) for b in sent} == {(p.text, t, 1.0) for p in PROMPTS for t in (0.3, 0.9)}

    paths = write_report(result, tmp_path / "report")
    rows = paths["csv"].read_text().splitlines()
    assert len(rows) == 7 and rows[1].startswith("1,detailed,0.3,1.0,1.0,")
    assert paths["heatmap"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["heatmap"].stat().st_size > 5000
    assert yaml.safe_load(paths["best"].read_text()) == {"system_prompt": "Answer in detail.",
                                                        "params": {"temperature": 0.3, "top_p": 1.0}}
    assert "| 1 | detailed | 0.3 | 1 | 100.0% |" in paths["summary"].read_text()

    calls = {name: fake.requests for name, (fake, _) in fakes.items()}
    tune_prompt(project, "student", PROMPTS, [0.3, 0.9], [1.0], evalset="ev", progress=False)
    assert {name: fake.requests for name, (fake, _) in fakes.items()} == calls  # answers and verdicts cached
    recorded = record_best(project, result)  # through evaluate.judge, for the leaderboard: all cached
    assert {name: fake.requests for name, (fake, _) in fakes.items()} == calls
    assert recorded.win_rate == 1.0 and recorded.candidate == "student tuned [detailed t=0.3 p=1]"
    assert [e.name for e in leaderboard(project, evalset="ev")] == [recorded.candidate]


def test_best_of_n_keeps_the_sample_the_judge_prefers(project: Project, fakes: dict) -> None:
    one = tune_prompt(project, "student", [Prompt("plain", "")], [0.3], [1.0], evalset="ev", progress=False)
    two = tune_prompt(project, "student", [Prompt("plain", "")], [0.3], [1.0], evalset="ev", best_of=2,
                      progress=False)
    # Sample 0 (seed 0) has 1 sentence and loses; sample 1 (seed 1) has 2 and ties; the judge keeps sample 1.
    assert one.cells[0].win_rate == 0.0 and two.cells[0].win_rate == 0.5
    seeds = sorted({b.get("seed") for b in fakes["student"][0].bodies})
    assert seeds == [0, 1]
    assert two.best_of == 2


def test_cli_tune_prompt(project_dir: Path, fakes: dict, project: Project) -> None:
    (project_dir / "prompts.txt").write_text("Be curt.\n---\nAnswer in detail.\n")
    overrides = [f"--set=models.{name}={json.dumps(spec)}" for name, spec in model_specs(fakes).items()]
    result = invoke_cli(*overrides, "tune-prompt", "student", "--prompts", "prompts.txt", "-t", "0.3",
                        "--top-p", "0.9", "--evalset", "ev")
    assert result.exit_code == 0, result.output
    assert re.search(r"1 .*p2 .*0\.3 .*0\.9 .*100\.0%", result.output)
    assert "on the leaderboard as 'student tuned [p2 t=0.3 p=0.9]'" in result.output
    [out] = (project_dir / "reports" / "tune").iterdir()
    assert {p.name for p in out.iterdir()} == {"results.csv", "heatmap.png", "summary.md", "best.yaml"}
    missing = invoke_cli(*overrides, "tune-prompt", "--prompts", "nope.yaml")
    assert missing.exit_code == 2 and "nope.yaml: prompts file not found" in missing.output


def test_load_prompts_formats_and_errors(tmp_path: Path) -> None:
    listed = tmp_path / "a.yaml"
    listed.write_text("- Be warm.\n- {name: formal, prompt: Be formal.}\n")
    assert load_prompts(listed) == [Prompt("p1", "Be warm."), Prompt("formal", "Be formal.")]
    mapping = tmp_path / "b.yml"
    mapping.write_text("none:\nwarm: Be warm.\n")
    assert load_prompts(mapping) == [Prompt("none", ""), Prompt("warm", "Be warm.")]
    text = tmp_path / "c.txt"
    text.write_text("First prompt\nwith two lines.\n---\n\nSecond.\n---\n")
    assert load_prompts(text) == [Prompt("p1", "First prompt\nwith two lines."), Prompt("p2", "Second.")]
    bad = tmp_path / "d.yaml"
    bad.write_text("- [1, 2]\n")
    with pytest.raises(ConfigError, match="entry 1"):
        load_prompts(bad)
    dup = tmp_path / "e.yaml"
    dup.write_text("- {name: x, prompt: a}\n- {name: x, prompt: b}\n")
    with pytest.raises(ConfigError, match="duplicate"):
        load_prompts(dup)


@pytest.mark.slow
def test_tune_prompt_on_real_local_models(project_dir: Path, tiny_llama_dir: Path, tmp_path: Path) -> None:
    """A random tiny Llama answers, the embedded SmolLM2 judges by option log-probabilities; best of 2."""
    proj = Project(project_dir)
    tiny = ModelSpec(provider="local", model=str(tiny_llama_dir), params={"max_tokens": 8, "temperature": 0.7})
    proj.config.models.update(student=tiny, reference=tiny.with_params(temperature=0.0))
    proj.config.models["judge"] = proj.config.models["judge"].with_params(max_tokens=4)
    save_evalset(proj, "ev", [Question("q0", QUESTIONS[0])], source="test")
    result = tune_prompt(proj, "student", [Prompt("plain", ""), Prompt("warm", "Be warm.")], [0.7], [0.9],
                         evalset="ev", best_of=2, progress=False)
    assert len(result.cells) == 2
    for cell in result.cells:
        assert cell.n == 1 and set(cell.outcomes) <= {"first", "second", "tie"}
        assert 0.0 <= cell.win_rate <= 1.0 and cell.mean_chars > 0
    paths = write_report(result, tmp_path / "local")
    assert paths["heatmap"].exists()
    verdicts = proj.store.query("SELECT COUNT(*) FROM judge_cache")[0][0]
    assert verdicts >= 2 * 2  # 2 cells x 2 orders vs the reference, plus the best-of contests
