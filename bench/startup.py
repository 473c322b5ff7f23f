"""Start-up cost of `loomctl --help` against a bare `import typer`, measured alternately in one run.

Target: a median ratio of 1.5x or less. Prints the figures; never fails on a slow machine.
Usage: python bench/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    script = Path(sys.executable).with_name("loomctl")
    loomctl = [str(script)] if script.exists() else [shutil.which("loomctl") or "loomctl"]
    commands = {"loomctl --help": [*loomctl, "--help"], "import typer": [sys.executable, "-c", "import typer"]}
    for command in commands.values():  # warm the page cache and .pyc files
        timed(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            samples[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:16} median {median * 1000:7.1f} ms  (min {min(samples[name]) * 1000:.1f} ms, {args.runs} runs)")
    ratio = medians["loomctl --help"] / medians["import typer"]
    print(f"ratio loomctl --help / import typer: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
