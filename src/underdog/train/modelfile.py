"""An Ollama Modelfile for an exported GGUF: the model's chat template, and the tuned system prompt, temperature
and top_p (a `tune-prompt` best.yaml).

    text, notes = modelfile("my-run-q8_0.gguf", tokenizer.chat_template, {"system_prompt": "...", "temperature": 0.3})

Ollama writes templates in Go's text/template, not in the Jinja of Hugging Face tokenizers, so a template is
recognised by its family (its role markers) and written as Ollama's own template of that family. A family not
known here gets no TEMPLATE line: `ollama create` then matches the GGUF's `tokenizer.chat_template` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from underdog.errors import ConfigError


@dataclass(frozen=True)
class Family:
    markers: tuple[str, ...]  # all present in the Jinja template
    template: str  # Ollama's Go template of the family
    stops: tuple[str, ...]


CHATML = Family(("<|im_start|>", "<|im_end|>"),  # Ollama's template/chatml.gotmpl and its stop words
                "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
                "<|im_start|>assistant\n", ("<|im_start|>", "<|im_end|>"))
FAMILIES = {"chatml": CHATML}  # SmolLM2, Qwen2 / 2.5 / 3


def chat_family(chat_template: str | None) -> str | None:
    """The name of the family a Jinja chat template belongs to, or None."""
    return next((name for name, f in FAMILIES.items() if chat_template and all(m in chat_template for m in f.markers)),
                None)


def modelfile(gguf_name: str, chat_template: str | None, settings: dict[str, Any]) -> tuple[str, list[str]]:
    """The Modelfile's text for the GGUF file `gguf_name` beside it, and notes on what it could not carry."""
    lines, notes = [f"FROM ./{gguf_name}"], []
    family = chat_family(chat_template)
    if family:
        lines.append(f'TEMPLATE """{FAMILIES[family].template}"""')
        lines += [f'PARAMETER stop "{stop}"' for stop in FAMILIES[family].stops]
    else:
        notes.append("chat template of no family known here: no TEMPLATE line, Ollama reads the GGUF's own")
    if settings.get("system_prompt"):
        lines.append(f'SYSTEM """{_quoted(settings["system_prompt"])}"""')
    lines += [f"PARAMETER {key} {settings[key]:g}" for key in ("temperature", "top_p") if key in settings]
    return "\n".join(lines) + "\n", notes


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ConfigError('the system prompt holds """, which a Modelfile cannot quote')
    return text
