"""Start-up time of `underdog --help` against `python -c "import typer"` (the floor of any Typer CLI).

    .venv/bin/python bench/startup.py [--runs 5]

Each is a fresh interpreter (subprocess); prints min and median seconds and the ratio of the medians.
Goal (issue 11): `underdog --help` <= 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "underdog --help": [sys.executable, "-m", "underdog", "--help"],
    "underdog generate --help": [sys.executable, "-m", "underdog", "generate", "--help"],
}


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    medians = {}
    for name, command in CASES.items():
        runs = [seconds(command) for _ in range(args.runs)]
        medians[name] = statistics.median(runs)
        print(f"{name:>26}: min {min(runs):.3f} s, median {medians[name]:.3f} s")
    floor = medians["python -c 'import typer'"]
    for name in list(CASES)[1:]:
        print(f"{name:>26}: {medians[name] / floor:.1f}x `import typer`")


if __name__ == "__main__":
    main()
