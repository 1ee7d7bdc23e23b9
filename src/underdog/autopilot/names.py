"""The names of everything the autopilot creates, in one place (its modules and the CLI share them).

Each name starts with `PREFIX`, so `underdog datasets`, `underdog runs` and `underdog evalset list` show what
the autopilot made at a glance.
"""

from __future__ import annotations

PREFIX = "autopilot"
FOLDER = PREFIX  # <project>/autopilot/: the journal and the submission bundle

# eval sets: the held-out pool (unless `autopilot.evalset` names yours), split once into dev and test
POOL, DEV, TEST = PREFIX, f"{PREFIX}-dev", f"{PREFIX}-test"

# datasets
GENERATED = f"{PREFIX}-generated"  # `generate` over the topics
DOCS = f"{PREFIX}-docs"  # `ingest` of `autopilot.documents`
MADE = f"{PREFIX}-made"  # everything made, before augmenting and curating
YOURS = f"{PREFIX}-yours"  # your own datasets, when a variant augments them (nothing was made)


def variant_dataset(variant: str) -> str:
    """The dataset a data variant trains on."""
    return f"{PREFIX}-{variant}"


def variant_made(variant: str) -> str:
    """A variant's made (and augmented) examples before curation; `+ "-curated"` after it."""
    return f"{PREFIX}-{variant}-made"


def run_id(trial: int, epochs: int) -> str:
    """The training run of a trial at a rung (`autopilot-t03-e2`)."""
    return f"{PREFIX}-t{trial:02d}-e{epochs}"


def run_epochs(run: str) -> int:
    """The epochs a run id names (`autopilot-t03-e2` -> 2)."""
    return int(run.rsplit("-e", 1)[1])
