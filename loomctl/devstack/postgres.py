"""A throwaway PostgreSQL server in a folder: initdb, pg_ctl on a free loopback port, stop by pid."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loomctl.devstack import _process
from loomctl.errors import BackendUnavailable

ENV_BIN_DIR = "LOOM_DEV_PG_BINDIR"
"""Folder with initdb, pg_ctl and postgres; when set, it is the only place searched."""

SUPERUSER = "loom"
DATABASE = "loom"
SERVER_OS_USER = "postgres"
"""PostgreSQL refuses to run as root: as root, the server runs as this (unprivileged) user."""

TOOLS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 60
# A Unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS); postgres adds
# "/.s.PGSQL.<port>" to the folder.
_SOCKET_DIR_MAX = 104 - len("/.s.PGSQL.65535") - 1


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    version: str

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_binaries() -> Binaries | None:
    """The server binaries: $LOOM_DEV_PG_BINDIR, else pg_config --bindir, Debian's newest, PATH."""
    for bin_dir in _candidate_bin_dirs():
        if all(os.access(bin_dir / tool, os.X_OK) for tool in TOOLS):
            version = _server_version(bin_dir)
            if version:
                return Binaries(bin_dir, version)
    return None


def searched() -> str:
    """Where :func:`find_binaries` looked, for an error message."""
    override = os.environ.get(ENV_BIN_DIR)
    if override:
        return f"{ENV_BIN_DIR}={override}"
    return f"pg_config --bindir, /usr/lib/postgresql/*/bin and PATH; set {ENV_BIN_DIR} to choose"


def _candidate_bin_dirs() -> Iterator[Path]:
    override = os.environ.get(ENV_BIN_DIR)
    if override:
        yield Path(override)
        return
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            yield Path(out)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        numbered = [p for p in debian.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)]
        for folder in sorted(numbered, key=lambda p: tuple(int(n) for n in p.name.split(".")), reverse=True):
            yield folder / "bin"
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent


def _server_version(bin_dir: Path) -> str | None:
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def server_os_user() -> pwd.struct_passwd | None:
    """None when this process may run the server itself; as root, the user that must run it.

    Raises KeyError when running as root and that user does not exist.
    """
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(SERVER_OS_USER)


def database_url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def prepare_root(state_dir: Path, os_user: pwd.struct_passwd | None) -> Path:
    """The folder that holds the cluster, created if needed: normally ``<state_dir>/postgres``.

    As root the server runs as ``os_user``, which must be able to traverse every parent of its
    folder. A state folder under /root (the default for root) or under pytest's private temp
    folders is out of its reach. Rather than opening those folders to every user of the machine,
    the cluster then lives in a private folder of its own in the temp dir, and
    ``<state_dir>/postgres`` is a symlink to it, so that a later `up` or `down` finds it.
    """
    link = state_dir / "postgres"
    if link.is_symlink():
        target = Path(os.readlink(link))
        if target.is_dir():
            return target.resolve()
        link.unlink()  # the temp dir was emptied (a reboot): start a new cluster
    elif link.is_dir():
        return link.resolve()
    if os_user is None or reachable(state_dir, os_user):
        link.mkdir(mode=0o700)
        root = link
    else:
        temp = Path(tempfile.gettempdir()).resolve()
        if not reachable(temp, os_user):
            raise BackendUnavailable(
                f"the {os_user.pw_name} user that runs PostgreSQL cannot reach {state_dir} nor {temp}: "
                "pass --dir with a folder it can traverse"
            )
        root = Path(tempfile.mkdtemp(prefix="loomctl-pg-", dir=temp))
        link.symlink_to(root, target_is_directory=True)
    if os_user is not None:
        os.chown(root, os_user.pw_uid, os_user.pw_gid)
    return root.resolve()


def reachable(folder: Path, user: pwd.struct_passwd) -> bool:
    """``user`` may traverse ``folder`` and all its parents (mode bits only; ACLs are not read)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for path in [folder, *folder.parents]:
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def data_dir(root: Path) -> Path:
    return root / "data"


def log_file(root: Path) -> Path:
    return root / "postgres.log"


def is_initialized(root: Path) -> bool:
    return (data_dir(root) / "PG_VERSION").is_file()


def cluster_major(root: Path) -> int:
    return int((data_dir(root) / "PG_VERSION").read_text().strip())


def init_cluster(binaries: Binaries, root: Path, os_user: pwd.struct_passwd | None) -> None:
    """initdb with a trusted ``loom`` superuser, plus settings for a fast, disposable server."""
    socket_dir = root / "socket"
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    if os_user is not None:
        os.chown(socket_dir, os_user.pw_uid, os_user.pw_gid)
    result = _run(
        [
            binaries.tool("initdb"),
            "--pgdata",
            str(data_dir(root)),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",  # loopback only (listen_addresses below), throwaway data
            "--encoding",
            "UTF8",
            # C collation: byte order, the same on every machine, whatever locales are installed
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ],
        os_user,
        cwd=root,
        timeout=120,
    )
    if result.returncode != 0:
        raise BackendUnavailable(f"initdb failed (exit {result.returncode}): {_process.clean(result.stderr or result.stdout)}")
    # Past the 107-byte socket path limit postgres would refuse to start; TCP is all we need.
    sockets = str(socket_dir) if len(str(socket_dir)) <= _SOCKET_DIR_MAX else ""
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": sockets,
        # durability is worthless for a throwaway server and costs seconds per test run
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with open(data_dir(root) / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# loomctl dev: a disposable local server\n")
        for name, value in settings.items():
            conf.write(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n")


def start(
    binaries: Binaries, root: Path, os_user: pwd.struct_passwd | None, *, attempts: int = 3, port: int | None = None
) -> tuple[int, int]:
    """Start the server on a free loopback port and wait until it accepts connections: (pid, port).

    ``port`` is tried first when it is free, so a restarted server keeps its URL.
    """
    preferred = port
    remove_stale_locks(root)
    earlier = pid_from_file(root)
    # a postmaster already running on this folder (pg_ctl will refuse to start) is not ours to stop
    earlier = earlier if is_running(earlier, root) else None
    for attempt in range(1, attempts + 1):
        port = preferred if attempt == 1 and preferred and not _process.port_open(preferred) else _process.free_port()
        log_offset = _process.size(log_file(root))
        try:
            result = _run(
                [
                    binaries.tool("pg_ctl"),
                    "start",
                    "--pgdata",
                    str(data_dir(root)),
                    "--log",
                    str(log_file(root)),
                    "--wait",
                    "--timeout",
                    str(START_TIMEOUT_S),
                    "--silent",
                    "-o",
                    f"-p {port}",
                ],
                os_user,
                cwd=root,
                timeout=START_TIMEOUT_S + 30,
            )
            if result.returncode == 0:
                pid = pid_from_file(root)
                assert pid is not None, "pg_ctl started the server without a postmaster.pid"
                _wait_accepting(port, pid, root)
                return pid, port
        except BaseException:
            _stop_if_new(root, earlier)
            raise
        _stop_if_new(root, earlier)  # pg_ctl gives up after --timeout but leaves a slow server running
        log_tail = _process.written_since(log_file(root), log_offset)
        if "could not bind" in log_tail and attempt < attempts:
            continue  # somebody took the port between our check and the start
        raise BackendUnavailable(
            f"PostgreSQL did not start (pg_ctl exit {result.returncode}): "
            f"{_process.clean(result.stderr or result.stdout)}\nlast lines of {log_file(root)}:\n{log_tail}"
        )
    raise AssertionError("unreachable")


def remove_stale_locks(root: Path, wait: float = 10.0) -> None:
    """Remove the lock files (``postmaster.pid``, ``.s.PGSQL.<port>.lock``) whose postmaster is gone.

    postgres takes a lock for held while the pid in it exists. A killed postmaster's pid exists
    as a zombie until init reaps it, which some container inits do only every few seconds, and
    after a reboot it may be another program's: postgres would refuse to start either way. A lock
    whose postmaster runs on this folder is never touched, nor one that cannot be read (a server
    starting now).
    """
    pid_file = data_dir(root) / "postmaster.pid"
    for lock in sorted((root / "socket").glob(".s.PGSQL.*.lock")):
        if _stale(lock, root):
            lock.unlink(missing_ok=True)
    if not _stale(pid_file, root):
        return
    # The postmaster's children notice its death and exit; until they have, the data folder is
    # in use and its lock must stay (postgres's own shared memory check reads it).
    deadline = time.monotonic() + wait
    while (left := server_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        raise BackendUnavailable(
            f"processes of an earlier PostgreSQL still run on {data_dir(root)} (pids {', '.join(map(str, left))}): "
            "stop them, then start again"
        )
    pid_file.unlink(missing_ok=True)


def _stale(lock: Path, root: Path) -> bool:
    try:
        pid = abs(int(lock.read_text().split("\n", 1)[0]))  # negative: a single-user backend
    except (OSError, ValueError):
        return False
    return not is_running(pid, root)


def server_processes(root: Path) -> list[int]:
    """Live processes working in the data folder: a server's backends all do (Linux; [] elsewhere)."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return []
    folder = str(data_dir(root).resolve())
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == folder:
                    found.append(int(entry.name))
            except OSError:  # gone, a zombie, or not ours to look at
                continue
    return sorted(found)


def _stop_if_new(root: Path, earlier: int | None) -> None:
    """Stop a postmaster that pg_ctl launched before failing or being interrupted."""
    pid = pid_from_file(root)
    if pid is not None and pid != earlier:
        stop(pid, root)


def pid_from_file(root: Path) -> int | None:
    """The postmaster's pid from its lock file, if there is one."""
    try:
        return int((data_dir(root) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _wait_accepting(port: int, pid: int, root: Path, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(database_url(port, "postgres"), connect_timeout=3) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError as exc:
            if not is_running(pid, root) or time.monotonic() >= deadline:
                raise BackendUnavailable(
                    f"PostgreSQL on port {port} does not accept connections: {exc}\n"
                    f"last lines of {log_file(root)}:\n{_process.tail(log_file(root))}"
                ) from None
            time.sleep(0.2)


def ensure_database(port: int, name: str = DATABASE) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(port, "postgres"), autocommit=True, connect_timeout=10) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def answers(url: str, timeout: int = 3) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def is_running(pid: int | None, root: Path) -> bool:
    return _process.is_running(pid, str(data_dir(root)))


def stop(pid: int | None, root: Path) -> bool:
    """Stop the postmaster by pid; True once it is gone.

    SIGINT is PostgreSQL's fast shutdown, exactly what `pg_ctl stop -m fast` sends, without
    needing the data folder to read the pid from. Then SIGQUIT (immediate shutdown) and, as a last
    resort, SIGKILL; backends notice their postmaster's death and exit on their own.
    """
    steps = [(signal.SIGINT, 30.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)]
    return _process.terminate(pid, str(data_dir(root)), steps)


def _run(argv: list[str], os_user: pwd.struct_passwd | None, *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as ``os_user`` when given (we are root and postgres will not be)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    as_user: dict[str, object] = {}
    if os_user is not None:
        as_user = {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}
        env.update(HOME=os_user.pw_dir, USER=os_user.pw_name, LOGNAME=os_user.pw_name)
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            **as_user,  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from None
