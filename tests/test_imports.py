"""The import graph of all of `underdog`: no circle between modules, counting type-only (`if TYPE_CHECKING:`) and
function-local imports too, and every function-local import says why it is not at the top (issue 20)."""

from __future__ import annotations

import ast
from pathlib import Path

import underdog

SRC = Path(underdog.__file__).parent
# Modules other work is changing at the time of writing: their local imports are not yet annotated (issue 20).
NOT_YET_ANNOTATED: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported(tree: ast.Module) -> list[tuple[str, ast.stmt]]:
    """(module, statement) of every `underdog` module a file imports, at any depth: `from underdog.x import y`
    names `underdog.x` and, when `y` is a module, `underdog.x.y` too."""
    out: list[tuple[str, ast.stmt]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("underdog"):
            names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(name.removeprefix("underdog").lstrip("."), node) for name in names
                if name.startswith("underdog") and name.removeprefix("underdog").lstrip(".") in MODULES]
    return out


def graph() -> dict[str, set[str]]:
    return {m: {dep for dep, _ in imported(ast.parse(p.read_text())) if dep != m} for m, p in MODULES.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_circle_through_a_local_or_type_only_import() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    edges = graph()
    assert "llm.registry" in edges["llm.runtime"] and "config" in edges["llm.registry"]  # a TYPE_CHECKING one
    assert "evaluate.judges.people" in edges["evaluate.judge"]  # a function-local one


def test_no_module_of_underdog_imports_itself_round_a_circle() -> None:
    assert circles(graph()) == []


def test_config_imports_nothing_from_the_model_layer() -> None:
    assert not any(dep == "llm" or dep.startswith("llm.") for dep in graph()["config"])


def test_each_function_local_import_says_why_it_is_not_at_the_top() -> None:
    """A `from underdog...` inside a function or an `if` (other than `if TYPE_CHECKING:`) carries `# lazy: why`."""
    unexplained = []
    for name, path in MODULES.items():
        if name in NOT_YET_ANNOTATED:
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        typing_only = {id(node) for block in tree.body if isinstance(block, ast.If)
                       and ast.unparse(block.test) == "TYPE_CHECKING" for node in block.body}
        for _, node in imported(tree):
            if id(node) in top or id(node) in typing_only:
                continue
            text = "\n".join(lines[node.lineno - 2:node.end_lineno or node.lineno])
            if "# lazy:" not in text:
                unexplained.append(f"{name}:{node.lineno}")
    assert sorted(set(unexplained)) == []
