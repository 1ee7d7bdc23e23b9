"""The autopilot's one look at the test split: the pick with its tuned settings, and the base student, each
judged against the reference once, after every choice was made on the dev split.

"Once" holds in the database too: a judging already recorded (a kill between recording it and the journal's
`test` event) is read back, never judged again (judging.py).
"""

from __future__ import annotations

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import TESTED, Budget, Context
from underdog.autopilot.judging import judged, numbers, reference_numbers
from underdog.autopilot.names import DEV, TEST
from underdog.evaluate.answer import Candidate, resolve_candidate


class HoldOut:
    key, title = "test", "test: the pick and the base student, judged once on the test split"
    artifact = f"the pick's and the base student's numbers on {TEST} (journal, judge_results)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        return [Pricer(ctx.project).judging("test", "test: the pick and the base student, once", sizes.jury, 2,
                                            sizes.n_test)]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key) or ctx.latest(TESTED) is not None

    def run(self, ctx: Context, budget: Budget) -> None:
        project = budget.take("test", essential=True)
        assert project is not None
        run_id, generation, jury = ctx.pick().run_id, ctx.generation(), ctx.jury()
        reference = project.config.evaluate.reference
        spec = resolve_candidate(project, run_id, system_prompt=generation["system_prompt"],
                                 temperature=generation["temperature"], top_p=generation["top_p"]).spec
        pick = judged(project, Candidate(f"{run_id} (autopilot pick)", spec), TEST, jury)
        found = {"pick": numbers(pick), "reference": reference, "evalset": TEST}
        if project.model_spec("student") == project.model_spec(reference):
            found["base"] = reference_numbers(pick, "the base student is the reference")
        else:
            found["base"] = numbers(judged(project, "student", TEST, jury))
        ctx.journal.event(step=TESTED, numbers=found)
        ctx.journal.decide("test", f"{run_id}: {found['pick']['summary']}; base: {found['base']['summary']}",
                           why=f"judged once on {TEST}, after every choice was made on {DEV}")
