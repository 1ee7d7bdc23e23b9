"""Where a project keeps its artifacts: every folder and file name a stage writes, in one place.

    <root>/  underdog.yaml  underdog.db  topics.yaml
      datasets/<name>/   data.jsonl  manifest.json  curation.json
      evalsets/<name>/   questions.jsonl  manifest.json
      runs/<run-id>/     manifest.json  adapter/  checkpoints/  loss.png  merged/
      reports/

`Project` is a `Layout` (`project.dataset_dir("base")`). Functions that take a bare folder instead of a project
(`load_dataset(root, name)`) build their paths with `Layout(root)`, so each path is spelled once. This module
imports nothing heavy: any stage may use it.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_FILE = "manifest.json"  # of a dataset version, an eval set and a run; written last: marks it complete
DATA_FILE = "data.jsonl"  # a dataset version's examples
QUESTIONS_FILE = "questions.jsonl"  # an eval set's questions
ADAPTER_DIR = "adapter"  # a run's LoRA adapter
RUN_COPY_FILE = "underdog_run.json"  # a copy of a run's manifest that travels with its adapter / merged weights
CHECKPOINTS_DIR = "checkpoints"  # a run's trainer checkpoints while it runs
LOSS_PLOT_FILE = "loss.png"  # a run's train and eval loss curve
MERGED_DIR = "merged"  # a run's merged full weights (`underdog merge`)


class Layout:
    """The artifact paths of the project folder `root` (nothing is created or read)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def evalsets_dir(self) -> Path:
        return self.root / "evalsets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def dataset_dir(self, name: str) -> Path:
        """The folder of dataset version `name`."""
        return self.datasets_dir / name

    def evalset_dir(self, name: str) -> Path:
        """The folder of eval set `name`."""
        return self.evalsets_dir / name

    def run_dir(self, run_id: str) -> Path:
        """The folder of training run `run_id`."""
        return self.runs_dir / run_id

    def report_dir(self, *parts: str) -> Path:
        """The reports folder, or a folder in it (`report_dir("datasets")`)."""
        return self.reports_dir.joinpath(*parts)
