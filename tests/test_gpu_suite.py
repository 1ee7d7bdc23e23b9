"""bench/gpu_suite.sh --dry-run: every check of the GPU suite runs on CPU with tiny shapes, so the script a GPU
session runs cannot rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_suite_dry_run_prints_json_with_every_check(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([str(REPO / "bench" / "gpu_suite.sh"), "--dry-run"], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # stdout is the JSON alone (progress bars go to stderr)
    assert report["dry_run"] and report["device"] == "cpu"
    checks = report["checks"]
    assert set(checks) == {"environment", "train", "liger", "two_runs", "generate", "judge_precision",
                           "serve_oom_stream", "flatten_two_gpus"}
    assert all(c["ok"] for c in checks.values()), {k: c.get("error") for k, c in checks.items()}
    assert checks["train"]["plain"]["tokens_per_s"] > 0 and checks["train"]["underdog"]["tokens_per_s"] > 0
    assert checks["generate"]["new_tokens"][0] > 0 and checks["judge_precision"]["pairs"] == 3
    assert checks["serve_oom_stream"]["ended"] and checks["flatten_two_gpus"]["skipped"]
    assert "liger-kernel" in checks["liger"]["skipped"]  # CPU: the Liger case runs only on a lent GPU
    assert json.loads((tmp_path / "gpu_suite.json").read_text()) == report


def test_a_failing_check_is_reported_and_the_others_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    monkeypatch.setenv("OUT", str(tmp_path))
    try:
        import gpu_suite
    finally:
        sys.path.remove(str(REPO / "bench"))
    suite = gpu_suite.Suite(dry_run=True)

    def broken(suite: object) -> dict:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    suite.check("broken", lambda: broken(suite))
    suite.check("fine", lambda: {"value": 1})
    checks = json.loads((tmp_path / "gpu_suite.json").read_text())["checks"]
    assert checks["broken"]["ok"] is False and "illegal memory access" in checks["broken"]["error"]
    assert checks["fine"] == {"ok": True, "value": 1, "seconds": checks["fine"]["seconds"]}
