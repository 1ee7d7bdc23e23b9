"""Does the winner survive GGUF? The demo's tuned run, merged and exported per quantization, loaded back through
transformers' GGUF loader (weights de-quantized, tokenizer rebuilt from the file), answers the demo's eval set.

    underdog demo                                   # once: builds demo-project/ (about 10-20 min on 2 cores)
    .venv/bin/python bench/gguf_roundtrip.py [demo-project] [--quant f16 --quant q8_0 --quant q4_k_m]

Baseline, in the same process and with the same settings as the demo (temperature 0, 48 answer tokens): the
merged model (fp32, no GGUF). Each candidate's answers go through `underdog judge` with the `facts` judge against
the base student; printed: facts stated (of the eval set's), file size, and the difference in facts from the
merged model (the check: within one fact), and how many answers are word for word the merged model's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from underdog.evaluate.answer import Candidate, resolve_candidate
from underdog.evaluate.judge import judge
from underdog.evaluate.store import answers_of
from underdog.llm.local import gguf_to_folder
from underdog.pipeline import BASE, FULL, RUN, overrides
from underdog.project import Project
from underdog.train.export import export_model
from underdog.train.merge import merge_run


def facts_stated(project: Project, name: str, folder: Path) -> tuple[int, int, dict[str, str]]:
    """(facts stated, facts asked, answers by question id) of the model in `folder`, answering with the
    student's settings."""
    candidate = Candidate(name, project.config.models["student"].model_copy(update={"model": str(folder),
                                                                                    "adapter": None}))
    result = judge(project, candidate, BASE, judges=["facts"], progress=False)
    assert result.recall is not None, "the eval set has no facts"
    stored = answers_of(project.store, resolve_candidate(project, candidate).id, result.evalset)
    answers = {r["question_id"]: r["answer"] for r in stored}
    return result.recall.stated, result.recall.facts, answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", nargs="?", default="demo-project")
    parser.add_argument("--quant", action="append", default=None)
    args = parser.parse_args()
    project = Project(Path(args.project), overrides=overrides(FULL))
    work = Path(tempfile.mkdtemp(prefix="gguf-roundtrip-"))
    print(f"load average {os.getloadavg()[0]:.1f}; run {RUN} of {args.project}")
    merged = merge_run(project, RUN, work / "merged", dtype="float32")
    base, facts, merged_answers = facts_stated(project, f"{RUN} merged (fp32)", merged)
    print(f"merged fp32: {base} of {facts} facts")
    for quant in args.quant or ["f16", "q8_0", "q4_k_m"]:
        start = time.perf_counter()
        exported = export_model(project, RUN, "gguf", quant, out=work / f"export-{quant}")
        seconds = time.perf_counter() - start
        back = gguf_to_folder(exported.gguf, work / f"back-{quant}")
        stated, _, answers = facts_stated(project, f"{RUN} gguf {quant}", back)
        same = sum(answers.get(q) == a for q, a in merged_answers.items())
        print(f"gguf {quant}: {stated} of {facts} facts ({stated - base:+d} vs merged), {same} of "
              f"{len(merged_answers)} answers identical to the merged model's, "
              f"{exported.size / 2**20:.1f} MiB, exported in {seconds:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
