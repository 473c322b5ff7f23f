"""Start-up cost of `loomctl --help` against a bare `import typer`, measured alternately in one run.

Target: a median ratio of 1.3x or less (issue #15). Prints the figures; never fails on a slow machine.
With ``--against REV`` the same `--help` of that git revision (checked out in a temporary worktree)
runs alternately too, so a change's cost on start-up is measured side by side.
Usage: python bench/startup.py [--runs 30] [--against REV]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def help_of(checkout: Path) -> list[str]:
    """`loomctl --help` run from the package in ``checkout``, whatever the venv has installed."""
    code = f"import sys; sys.path.insert(0, {str(checkout)!r}); sys.argv = ['loomctl', '--help']; from loomctl.cli import main; main()"
    return [sys.executable, "-c", code]


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="loomctl-startup-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--against", metavar="REV", help="Also time `--help` of this git revision, alternately.")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        commands = {"loomctl --help": help_of(ROOT), "import typer": [sys.executable, "-c", "import typer"]}
        if args.against:
            commands[f"--help at {args.against}"] = help_of(stack.enter_context(worktree(args.against)))
        measure(commands, args.runs, args.against)


def measure(commands: dict[str, list[str]], runs: int, against: str | None) -> None:
    for command in commands.values():  # warm the page cache and .pyc files
        timed(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:24} median {median * 1000:7.1f} ms  (min {min(samples[name]) * 1000:.1f} ms, {runs} runs)")
    ratio = medians["loomctl --help"] / medians["import typer"]
    print(f"ratio loomctl --help / import typer: {ratio:.2f}x (target <= 1.3x)")
    if against:
        print(f"ratio loomctl --help / --help at {against}: {medians['loomctl --help'] / medians[f'--help at {against}']:.2f}x")


if __name__ == "__main__":
    main()
