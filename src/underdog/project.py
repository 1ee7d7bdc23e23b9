"""A project folder: `underdog.yaml`, `underdog.db`, and the artifacts each stage writes.

    my-domain/
      underdog.yaml   underdog.db   topics.yaml
      datasets/<name>/  evalsets/<name>/  runs/<run-id>/  reports/
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from underdog.config import CONFIG_NAME, NOT_A_PROJECT, Config, ModelSpec, load_config, render_default_config
from underdog.errors import ConfigError, UnderdogError
from underdog.llm import LLM
from underdog.store import Store

DB_NAME = "underdog.db"


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds an `underdog.yaml`."""
    return next((folder for folder in (start, *start.parents) if (folder / CONFIG_NAME).is_file()), None)


class Project:
    """Paths, config, store and configured models of one project folder (the nearest one at or above `root`
    that holds an `underdog.yaml`)."""

    def __init__(self, root: Path | str = ".", overrides: list[str] | None = None):
        start = Path(root).resolve()
        self.root = find_root(start) or start
        self.overrides = overrides or []

    def require(self) -> Project:
        """This project, or ConfigError when there is no `underdog.yaml` (nothing is created)."""
        if not self.config_path.is_file():
            raise ConfigError(NOT_A_PROJECT)
        return self

    @cached_property
    def config(self) -> Config:
        return load_config(self.require().config_path, self.overrides)

    @cached_property
    def store(self) -> Store:
        return Store(self.require().root / DB_NAME)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

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

    def model_spec(self, name: str) -> ModelSpec:
        """A model by role (`teacher`), run id (`runs/<id>` -> student + adapter), `provider:model`, or a
        local HF id / path (`smollm2-135m`, `HuggingFaceTB/SmolLM2-360M-Instruct`)."""
        models = self.config.models
        if name in models:
            return models[name]
        run_adapter = self.runs_dir / name / "adapter"
        for adapter in (run_adapter, Path(name) / "adapter", Path(name)):
            if (adapter / "adapter_config.json").exists():
                return models["student"].model_copy(update={"adapter": str(adapter.resolve())})
        provider, sep, model = name.partition(":")
        if sep and provider in ("openai", "azure", "litellm", "local"):
            return ModelSpec(provider=provider, model=model)
        return ModelSpec(provider="local", model=name)

    def llm(self, name: str, stage: str | None = None) -> LLM:
        """The named model behind the shared call path, logging to this project's store."""
        spec = self.model_spec(name)
        return LLM(spec, self.store, role=name, stage=stage, budget_usd=self.config.budget_usd,
                   stage_budget_usd=self.config.stage_budgets_usd.get(stage or ""))


def init_project(domain: str, root: Path | str = ".", force: bool = False) -> Path:
    """Write a commented `underdog.yaml` for `domain` (offline defaults on the embedded model)."""
    if not domain.strip():
        raise UnderdogError("the domain description is empty")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.write_text(render_default_config(domain))
    return path
