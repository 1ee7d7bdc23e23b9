"""Changing keys of `underdog.yaml` in place, keeping its comments, layout and strict validation.

    set_keys(project.config_path, {("evaluate", "judges"): ["judge", "people"],
                                   ("evaluate", "judge_weights"): {"judge": 0.5, "people": 1.0}})

Each value is written in YAML's flow style on its key's line (`judges: [judge, people]`); a missing key is added
at the end of its section (a missing section at the end of the file); everything else is left byte for byte.
The new text must pass the config's own validation (`load_config`) before it replaces the file; an empty mapping
or list for a key that is not there adds nothing. Two levels (section, key) are enough for what commands write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from underdog.config import load_config
from underdog.errors import ConfigError
from underdog.textfile import read_user_text


def set_keys(path: Path, changes: Mapping[tuple[str, str], Any]) -> None:
    """Set `section.key` to each value in the YAML file `path`, validate, and replace the file atomically."""
    text = read_user_text(path, error=ConfigError, option=None)
    for (section, key), value in changes.items():
        text = set_key(text, section, key, value)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    try:
        load_config(tmp)
    except ConfigError as exc:
        tmp.unlink()
        raise ConfigError(str(exc).replace(str(tmp), str(path)) + " (the change was not written)") from None
    os.replace(tmp, path)


def flow(value: Any) -> str:
    """A value as one line of YAML flow style."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip().removesuffix(
        "\n...").strip()


def set_key(text: str, section: str, key: str, value: Any) -> str:
    """`text` with `section.key` set to `value` (see the module docstring)."""
    root = yaml.compose(text)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError("underdog.yaml: expected a mapping of keys at the top level")
    found = _entry(root, section)
    empty = value in ({}, [])
    if found is None:
        return text if empty else text.rstrip("\n") + f"\n\n{section}:\n  {key}: {flow(value)}\n"
    _, body = found
    if not isinstance(body, yaml.MappingNode) or body.flow_style or not body.value:
        raise ConfigError(f"underdog.yaml: {section}: write it as a block of `key: value` lines to let underdog "
                          f"change {section}.{key}")
    entry = _entry(body, key)
    if entry is None:
        if empty:
            return text
        indent = " " * body.value[0][0].start_mark.column
        end = text.find("\n", _end(text, body.value[-1][1]))  # after the line of the section's last value
        end = len(text) if end < 0 else end
        return text[:end] + f"\n{indent}{key}: {flow(value)}" + text[end:]
    key_node, node = entry
    start = node.start_mark.index if node.start_mark.line == key_node.start_mark.line else key_node.end_mark.index
    prefix = "" if node.start_mark.line == key_node.start_mark.line else ": "
    return text[:start] + prefix + flow(value) + text[_end(text, node):]


def _entry(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    return next(((k, v) for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == name), None)


def _end(text: str, node: yaml.Node) -> int:
    """Where a node's text ends, without the line breaks and indentation a block node's end mark takes in."""
    end = node.end_mark.index
    while end > node.start_mark.index and text[end - 1] in " \t\r\n":
        end -= 1
    return end
