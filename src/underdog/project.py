"""A project folder: `underdog.yaml`, `underdog.db`, and the artifacts each stage writes (their paths: `layout.py`).

    my-domain/
      underdog.yaml   underdog.db   topics.yaml
      datasets/<name>/  evalsets/<name>/  runs/<run-id>/  reports/
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from underdog.config import (
    CONFIG_NAME,
    EMBEDDED_MODEL,
    NOT_A_PROJECT,
    Config,
    ModelSpec,
    load_config,
    render_default_config,
)
from underdog.errors import ConfigError, UnderdogError
from underdog.layout import ADAPTER_DIR, Layout
from underdog.llm import LLM
from underdog.llm.registry import provider_names
from underdog.llm.runtime import Runtime
from underdog.locking import ProjectLock
from underdog.progress import SILENT, Reporter
from underdog.store import Store

DB_NAME = "underdog.db"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def check_hub_model(model_id: str) -> str:
    """`model_id` when it is in the local Hugging Face cache or the hub may be reached; else one-line
    UnderdogError (offline, nothing is fetched: HF_HUB_OFFLINE=1, or no connection to the hub)."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return model_id
    if hub_offline():
        raise UnderdogError(f"{model_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
                            "(download it where the hub is reachable, or name a local folder)")
    if not hub_reachable():
        raise UnderdogError(f"{model_id!r} is not in the local Hugging Face cache and the hub cannot be reached "
                            "(check the network, or name a local folder)")
    return model_id


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens within `timeout_s`."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds an `underdog.yaml`."""
    return next((folder for folder in (start, *start.parents) if (folder / CONFIG_NAME).is_file()), None)


@dataclass(frozen=True)
class SpendLimit:
    """Dollars the models a project builds may spend, in place of underdog.yaml's `budget_usd` (the project's
    total spend) and `stage_budgets_usd` (calls logged under each stage) where given (`Project.with_budget`)."""

    total_usd: float | None = None
    stage_usd: Mapping[str, float] = field(default_factory=dict)


class Project(Layout):
    """Paths, config, store and configured models of one project folder (the nearest one at or above `root`
    that holds an `underdog.yaml`). Its stages report progress to `reporter` (nothing, unless the CLI gives one).
    Every artifact path comes from its `Layout` (`dataset_dir`, `evalset_dir`, `run_dir`, `report_dir`)."""

    def __init__(self, root: Path | str = ".", overrides: list[str] | None = None, reporter: Reporter = SILENT):
        start = Path(root).resolve()
        super().__init__(find_root(start) or start)
        self.overrides = overrides or []
        self.reporter = reporter
        self.limit = SpendLimit()

    def with_overrides(self, extra: list[str]) -> Project:
        """This project with more config overrides, sharing its store, runtime (loaded models), reporter and
        spending limit."""
        other = Project(self.root, [*self.overrides, *extra], self.reporter)
        other.__dict__["store"], other.__dict__["runtime"] = self.store, self.runtime  # cached_property slots
        other.limit = self.limit
        return other

    def with_budget(self, limit: SpendLimit) -> Project:
        """This project (sharing its store, runtime and reporter) whose models spend within `limit`."""
        other = self.with_overrides([])
        other.limit = limit
        return other

    def require(self) -> Project:
        """This project, or ConfigError when there is no `underdog.yaml` (nothing is created)."""
        if not self.config_path.is_file():
            raise ConfigError(NOT_A_PROJECT)
        return self

    def lock(self, command: str) -> ProjectLock:
        """The project's writer lock, described as `command` to a second writer (`with project.lock(...)`)."""
        return ProjectLock(self.require().root, command)

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

    def model_spec(self, name: str) -> ModelSpec:
        """A model by role (`teacher`), run id (`runs/<id>` -> student + adapter), `provider:model`, the embedded
        model, a local model or adapter folder, or a Hugging Face id `owner/name` (cached, or online); anything
        else is UnderdogError "no run, role or model named ..." listing the close names."""
        roles = self.config.models if self.config_path.is_file() else {}
        if name in roles:
            return roles[name]
        if adapter := self._adapter_dir(name):
            return self._student(roles, adapter).model_copy(update={"adapter": str(adapter.resolve())})
        provider, sep, model = name.partition(":")
        if sep and provider in provider_names():  # any registered provider, plugins included
            return ModelSpec(provider=provider, model=model)
        if name == EMBEDDED_MODEL or Path(name).is_dir():
            return ModelSpec(provider="local", model=name)
        if HUB_ID.match(name):
            return ModelSpec(provider="local", model=check_hub_model(name))
        raise UnderdogError(self._unknown_model(name, roles))

    def _adapter_dir(self, name: str) -> Path | None:
        candidates = (self.run_dir(name) / ADAPTER_DIR, Path(name) / ADAPTER_DIR, Path(name))
        return next((p for p in candidates if (p / "adapter_config.json").is_file()), None)

    @staticmethod
    def _student(roles: dict[str, ModelSpec], adapter: Path) -> ModelSpec:
        """The configured student, or outside a project the adapter's own base model."""
        if "student" in roles:
            return roles["student"]
        config = json.loads((adapter / "adapter_config.json").read_text())
        return ModelSpec(provider="local", model=config.get("base_model_name_or_path") or EMBEDDED_MODEL)

    def _unknown_model(self, name: str, roles: dict[str, ModelSpec]) -> str:
        runs = sorted(p.name for p in self.runs_dir.glob("*") if p.is_dir()) if self.runs_dir.is_dir() else []
        close = difflib.get_close_matches(name, [*roles, *runs, EMBEDDED_MODEL], n=3, cutoff=0.6)
        known = f"close: {', '.join(close)}" if close else f"roles: {', '.join(roles) or 'none'}; runs: " + (
            f"{len(runs)}, see `underdog runs`" if runs else "none yet")
        return (f"no run, role or model named {name!r} ({known}); name a role, a run id, provider:model, "
                "a local folder or a Hugging Face id owner/name")

    def llm(self, name: str, stage: str | None = None) -> LLM:
        """The named model behind the shared call path, logging to this project's store."""
        return self.model(self.model_spec(name), role=name, stage=stage)

    def model(self, spec: ModelSpec, role: str | None = None, stage: str | None = None) -> LLM:
        """`spec` behind the shared call path with this project's store, budgets and reporter: the one way a
        stage builds a model."""
        total, stages = self.limit.total_usd, {**self.config.stage_budgets_usd, **self.limit.stage_usd}
        return LLM(spec, self.store, role=role, stage=stage,
                   budget_usd=self.config.budget_usd if total is None else total,
                   stage_budget_usd=stages.get(stage or ""), reporter=self.reporter, runtime=self.runtime)

    @cached_property
    def runtime(self) -> Runtime:
        """Where this project's model calls run (its event loop and backends)."""
        return Runtime()


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
