"""Start-up stays light: the CLI imports no stage's heavy libraries until a command needs them (issue 11)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "peft", "scipy", "openai", "datasketch", "matplotlib", "numpy", "pandas",
         "fastapi", "litellm", "pydantic"]


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library():
    assert imported_after("import underdog.cli") == []


def test_help_lists_every_stage_without_importing_them():
    code = ("import contextlib, io\nfrom underdog.cli import app\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    app(['--help'])\nassert 'generate' in out.getvalue() and 'judge' in out.getvalue(), out.getvalue()")
    assert imported_after(code) == []


def test_generate_module_imports_neither_scipy_nor_numpy():
    assert {"scipy", "numpy"}.isdisjoint(imported_after("import underdog.data.generation"))


def test_importing_the_stage_packages_imports_no_heavy_library():
    code = ("import underdog.data, underdog.evaluate, underdog.arena, underdog.tune, underdog.train, underdog.llm, "
            "underdog.layout")
    assert imported_after(code) == []


def test_judge_and_ingest_modules_import_no_numpy_before_the_first_request():
    """numpy (~0.1 s) is needed only for the statistics after the replies: not on the path to the first call."""
    imported = imported_after("import underdog.evaluate.judge, underdog.evaluate.answer, underdog.data.ingestion")
    assert "numpy" not in imported
