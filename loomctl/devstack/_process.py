"""Process plumbing shared by the local PostgreSQL and Kafka: ports, pids, detached servers, logs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

Progress = Callable[[str], None]

# Servers started by this process. Holding the Popen objects lets us reap a server we stopped
# (so it does not linger as a zombie while a test session goes on) and keeps Python from
# warning that a child is "still running" when the object would otherwise be collected.
_children: dict[int, subprocess.Popen[bytes]] = {}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def free_port() -> int:
    """A loopback TCP port that nobody listens on right now (the caller retries if it is taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.25) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def command_line(pid: int) -> str | None:
    """The process's command line, "" for a zombie, None when there is no such process."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            return None
        except OSError:
            pass
    try:  # no /proc (macOS)
        result = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    return None if result.returncode != 0 else ("" if "<defunct>" in text else text)


def is_running(pid: int | None, marker: str) -> bool:
    """``pid`` is alive and its command line contains ``marker``.

    The marker (a path only our server has on its command line) keeps a pid that the system
    recycled after a reboot or a crash from being taken for ours, and so from being killed.
    """
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:
        # our own child: no pid reuse is possible while it is unreaped, and its command line
        # reads empty for a moment around exec
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user; the command line decides
    cmd = command_line(pid)
    return bool(cmd) and marker in cmd  # type: ignore[operator]


def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int | None, marker: str, steps: Sequence[tuple[signal.Signals, float]]) -> bool:
    """Send each signal in turn until the process is gone; True when it is (or already was)."""
    if not pid:
        return True
    for sig, wait in steps:
        if not is_running(pid, marker):
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        if wait_gone(pid, marker, wait):
            return True
    return not is_running(pid, marker)


def launch(
    argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str] | None = None, open_files: int | None = None
) -> int:
    """Start a server in its own session with output appended to ``log``; returns its pid.

    Its own session: Ctrl-C in the terminal that ran `loomctl dev up` must not reach it, and it
    outlives the command that started it. ``open_files``: the descriptors it may hold, as far as
    this process may raise its limit (see :func:`raised_open_files`).
    """
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=(lambda: raised_open_files(open_files)) if open_files else None,
        )
    _children[child.pid] = child
    return child.pid


def raised_open_files(wanted: int) -> None:
    """Raise this process's open-files limit towards ``wanted``: to it where permitted (root may raise the hard
    limit), else the soft limit to the hard one; never lowered."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard) if hard != resource.RLIM_INFINITY else hard))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def written_since(path: Path, offset: int, lines: int = 15) -> str:
    """The last lines a server wrote to its log after ``offset``, without Java stack frames."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if not re.match(r"\s+(at |\.\.\. \d+ more)", line)]
    return "\n".join(kept[-lines:])


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, or "" when it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def clean(text: str) -> str:
    """Tool output without terminal colour codes, trimmed."""
    return _ANSI.sub("", text).strip()
