"""Is a configured model usable right now? Used by `underdog models`; each backend declares its own `check`."""

from __future__ import annotations

from underdog.config import ModelSpec
from underdog.errors import UnderdogError, redact
from underdog.llm.base import NOT_CHECKED, OK
from underdog.llm.registry import create_backend

__all__ = ["NOT_CHECKED", "OK", "check_model", "usable"]


def usable(status: str) -> bool:
    """Whether a `check_model` status is not a failure ("ok", or a provider with no cheap probe)."""
    return status in (OK, NOT_CHECKED)


def check_model(spec: ModelSpec, timeout_s: float = 5.0) -> str:
    """"ok", or a short reason the model cannot be used (secrets redacted)."""
    try:
        return redact(create_backend(spec).check(timeout_s))
    except UnderdogError as exc:
        return redact(str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer here
        return redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
