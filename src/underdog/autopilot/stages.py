"""The autopilot's stages, in the order they run: the one table that `plan.py` (each stage's estimate) and
`run.py` (each stage, unless done) read. A stage is a `context.Stage`; adding one is an entry here and its module
(docs/design.md shows the smallest example).
"""

from __future__ import annotations

from underdog.autopilot.bundle import Bundle
from underdog.autopilot.context import Stage
from underdog.autopilot.evalsets import EvalSet
from underdog.autopilot.holdout import HoldOut
from underdog.autopilot.search import Search
from underdog.autopilot.sources import Generate, Ingest, Topics
from underdog.autopilot.tuning import Tune
from underdog.autopilot.variants import Variants

STAGES: tuple[Stage, ...] = (Topics(), EvalSet(), Generate(), Ingest(), Variants(), Search(), Tune(), HoldOut(),
                             Bundle())
