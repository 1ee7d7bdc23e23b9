"""An answer's style, as Chatbot Arena's style control counts it: length and markdown elements.

    style_features("## Fees\n- **$45** by mail")   -> {"length": 24, "lists": 1, "headers": 1, "bold": 1}
    style_differences(features_a, features_b)     -> [(a - b) / (a + b) per feature]: -1..1, 0 when both are 0

Length is in characters (Chatbot Arena counts tokens; characters need no tokenizer and rank answers alike).
A list item is a line starting with `-`, `*`, `+` or `1.` / `1)`; a header a line starting with 1-6 `#`; bold a
`**text**` or `__text__` span.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

STYLE = ("length", "lists", "headers", "bold")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
HEADER = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_features(text: str) -> dict[str, float]:
    """Length (characters) and the counts of markdown list items, headers and bold spans of an answer."""
    return {"length": float(len(text)), "lists": float(len(LIST_ITEM.findall(text))),
            "headers": float(len(HEADER.findall(text))), "bold": float(len(BOLD.findall(text)))}


def style_differences(a: Mapping[str, float], b: Mapping[str, float]) -> list[float]:
    """Chatbot Arena's normalised difference per feature (STYLE order): (a - b) / (a + b), 0 when both are 0."""
    return [(a[k] - b[k]) / (a[k] + b[k]) if a[k] + b[k] else 0.0 for k in STYLE]
