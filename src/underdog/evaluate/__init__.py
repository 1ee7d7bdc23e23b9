"""Evaluation: eval sets, answering, pairwise judging, statistics, leaderboard and report.

The public API (every function takes a `Project` first):

    from underdog import evaluate
    evaluate.generate_evalset(project, "default", size=40)       # or import_evalset(project, Path("qs.jsonl"))
    evaluate.list_evalsets(project), evaluate.load_evalset(project, "default")   # -> [Question]
    evaluate.resolve_candidate(project, "runs/<id>")             # -> Candidate (model + adapter + prompt)
    evaluate.board_config(project), evaluate.recommend(entries)
    evaluate.judge_pairs(project, [(question, first, second)])   # -> ["first", "second", "tie", ...]
    evaluate.calibrated_jury(project)                            # the jury a calibration on the votes chose, or None
    evaluate.question_source(project, "dataset:base")            # questions beyond the eval set

The verbs live in modules of the same name, so they are imported from there (a package attribute would be
replaced by the module once it is imported): `from underdog.evaluate.answer import answer`, `...judge import
judge`, `...compare import compare`, `...leaderboard import leaderboard`, `...calibrate import calibrate`,
`...jury_status import jury_status`. The tables are in `store.py`.
Names are imported lazily (`underdog.lazy`): importing the package loads no model or statistics library.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {
    "Question": "evalset", "save_evalset": "evalset", "load_evalset": "evalset", "list_evalsets": "evalset",
    "resolve_evalset": "evalset", "import_evalset": "evalset", "generate_evalset": "evalset",
    "Candidate": "answer", "Answer": "answer", "resolve_candidate": "answer", "load_answers": "answer",
    "JudgeResult": "judge", "judge_pairs": "judge", "jury_config": "judge",
    "Comparison": "compare",
    "Entry": "leaderboard", "BoardConfig": "leaderboard", "board_config": "leaderboard", "recommend": "leaderboard",
    "answer_questions": "answer", "calibrated_jury": "calibrate", "apply_calibration": "calibrate",
    "Calibration": "calibrate", "CalibratedJury": "jury_status", "JuryStatus": "jury_status",
    "QuestionSet": "questions", "question_source": "questions", "eval_question_texts": "questions",
    "pairs_from_verdicts": "preference_pairs", "pairs_from_samples": "preference_pairs",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
