"""The local stack as one thing: `up`, `status` and `down` over a state folder and its stack.json.

Layout of a state folder::

    stack.json           ports, pids, versions and paths of what runs (written atomically)
    .lock                serializes `up` and `down` on the same folder
    postgres/            the cluster (or, as root, a symlink to it: see postgres.prepare_root)
    kafka/               server.properties, data/, logs/ of the first Kafka cluster's broker
    kafka-2/, kafka-3/   the same for the other clusters of `dev up --clusters N`

Each Kafka cluster is one broker (KRaft, broker and controller in one JVM) with a cluster id of its own.
stack.json keeps the first under "kafka", as it always has, and the others under "extra_kafka". Every broker of a
stack runs one Kafka release, recorded beside each ("version"): the one `up` was asked for when the stack began, and
the same at each later `up` (another is refused until `down`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import shlex
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loomctl.devstack import kafka, postgres
from loomctl.devstack._process import Progress
from loomctl.errors import BackendUnavailable, BadInput, Conflict, LoomError, NotFound
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL

ENV_KAFKA_VERSION = kafka.ENV_VERSION

STATE_FILE = "stack.json"
_LOCK_FILE = ".lock"
MAX_CLUSTERS = 3
"""Kafka clusters a local stack runs at most (`loomctl dev up --clusters N`)."""
DEFAULT_CLUSTER = "default"
_EXTRA_KAFKA = "extra_kafka"
_OWN_ENTRIES = (
    STATE_FILE,
    "." + STATE_FILE + ".tmp",
    *(kafka.home_name(c) for c in range(1, MAX_CLUSTERS + 1)),
    "postgres",
    _LOCK_FILE,
)
MIN_POSTGRES = 14
_APT_HINT = "on Debian or Ubuntu: apt-get install"


@dataclass(frozen=True)
class PostgresInfo:
    port: int | None
    pid: int | None
    version: str | None
    healthy: bool
    data_dir: Path | None
    log_file: Path | None


@dataclass(frozen=True)
class KafkaInfo:
    port: int | None
    controller_port: int | None
    pid: int | None
    version: str | None
    healthy: bool
    data_dir: Path | None
    log_file: Path | None
    cluster_id: str | None = None


@dataclass(frozen=True)
class DevCluster:
    """One Kafka cluster of the stack by the name a cluster registry knows it by: "default" for the first
    (the one of LOOM_KAFKA_BOOTSTRAP_SERVERS), "dev-2" and "dev-3" for the others."""

    name: str
    bootstrap_servers: str | None
    healthy: bool
    kafka: KafkaInfo


@dataclass(frozen=True)
class StackInfo:
    state_dir: Path
    database_url: str | None
    bootstrap_servers: str | None
    """The first Kafka cluster's ("default")."""
    postgres: PostgresInfo
    kafka: KafkaInfo
    """The first Kafka cluster's broker."""
    started_at: dt.datetime | None
    already_running: bool = False
    clusters: tuple[DevCluster, ...] = ()
    """Every Kafka cluster of the stack, the first ("default", the same broker as ``kafka``) first."""

    @property
    def healthy(self) -> bool:
        return self.postgres.healthy and self.kafka.healthy and all(c.healthy for c in self.clusters)

    @property
    def kafka_version(self) -> str | None:
        """The Kafka release the stack's brokers run (or ran, when stopped); None before any started."""
        return next((c.kafka.version for c in self.clusters if c.kafka.version), self.kafka.version)


def cluster_name(cluster: int) -> str:
    """The name of the stack's Kafka cluster number ``cluster``: "default" for the first, "dev-2", "dev-3" after it."""
    return DEFAULT_CLUSTER if cluster == 1 else f"dev-{cluster}"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/loomctl/dev`` (``~/.local/state/loomctl/dev`` by default)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state") / "loomctl" / "dev"


def up(
    state_dir: Path | None = None,
    *,
    migrate: bool = True,
    progress: Progress | None = None,
    clusters: int | None = None,
    kafka_version: str | None = None,
) -> StackInfo:
    """Start whatever part of the stack is not running, then migrate the database.

    ``clusters`` Kafka clusters (1 to MAX_CLUSTERS) run beside the database, each one broker with a
    cluster id of its own; None keeps as many as the stack has (1 for a new stack). More than the
    stack has starts the missing ones; fewer is a Conflict, since a stack is never shrunk.
    When every server recorded in the state folder is alive and answers, and there are enough
    clusters, nothing is started or migrated and the result has ``already_running=True``. If any
    step fails, the servers this call started are stopped again before the error propagates.

    ``kafka_version`` (X.Y.Z, else LOOM_DEV_KAFKA_VERSION) is the Kafka release a new stack runs; neither given, the
    pom's. A stack keeps the release it began with: asked for another, it is refused (Conflict) until `down`.
    """
    _check_clusters(clusters)
    asked = kafka.check_version(kafka_version) if kafka_version is not None else kafka.requested_version()
    state_dir = _resolve(state_dir)
    say = progress or _silent
    current = _current(state_dir)
    release = _kafka_release(current, asked)
    if current is not None and current.healthy and _wanted(current, clusters) == _count(current):
        return replace(current, already_running=True)
    _refuse_unanswering(current)
    if current is None and state_dir.is_dir() and any(p.name != _LOCK_FILE for p in state_dir.iterdir()):
        raise BadInput(f"{state_dir} is not empty and holds no {STATE_FILE}: choose another --dir for the local stack")
    need_postgres, need_kafka = _needs(current, _wanted(current, clusters))
    tools = _prerequisites(need_postgres=need_postgres, need_kafka=bool(need_kafka), kafka_version=release)
    if need_kafka:  # before the folder is made: a release Maven cannot fetch leaves nothing behind
        kafka.ensure_jars(release, progress=say)

    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        current = _current(state_dir)  # another `up` may have finished while we waited
        release = _kafka_release(current, asked)
        wanted = _wanted(current, clusters)
        if current is not None and current.healthy and wanted == _count(current):
            return replace(current, already_running=True)
        need_postgres, need_kafka = _needs(current, wanted)
        if (need_postgres and tools.postgres is None) or (need_kafka and tools.java is None):
            tools = _prerequisites(need_postgres=need_postgres, need_kafka=bool(need_kafka), kafka_version=release)
        record = _read(state_dir) or {}
        _write(state_dir, record)  # from now on the folder is recognisably ours, for `down`
        started: list[int | str] = []  # "postgres", or the number of a Kafka cluster
        try:
            libs = kafka.ensure_jars(release, progress=say) if need_kafka else None
            if need_postgres:
                _start_postgres(state_dir, record, tools, started, say)
            if need_kafka:
                assert tools.java is not None and libs is not None
                _start_kafka(state_dir, record, tools.java, libs, need_kafka, started, say, release=release)
            record["started_at"] = _now().isoformat()
            _write(state_dir, record)
            result = _info(state_dir, record, probe=False)
            if migrate:
                say("applying the database migrations")
                from loomctl.db.migrations import upgrade

                assert result.database_url is not None  # the stack just started its PostgreSQL
                upgrade(result.database_url)
                register_clusters(result.database_url, result.clusters)
        except BaseException as exc:
            _stop_started(state_dir, record, started, exc, say)
            raise
    return result


def register_clusters(database_url: str, clusters: Sequence[DevCluster]) -> None:
    """The stack's extra clusters in the cluster registry, under their names (the first is the default cluster,
    whose brokers stay LOOM_KAFKA_BOOTSTRAP_SERVERS'); a port that changed since is updated, audited as `dev up`'s."""
    import psycopg

    extra = [(c.name, c.bootstrap_servers) for c in clusters if c.name != "default" and c.bootstrap_servers]
    if not extra:
        return
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        conn.execute("SELECT set_config('loomctl.actor', 'loomctl dev up', true)")
        conn.execute("SELECT set_config('loomctl.reason', 'a cluster of the local stack', true)")
        for name, servers in extra:
            conn.execute(
                "INSERT INTO public.kafka_clusters (cluster_name, bootstrap_servers, description)"
                " VALUES (%s, %s, 'a cluster of the local stack (loomctl dev up --clusters)')"
                " ON CONFLICT (cluster_name) DO UPDATE SET bootstrap_servers = excluded.bootstrap_servers"
                " WHERE kafka_clusters.bootstrap_servers IS DISTINCT FROM excluded.bootstrap_servers",
                (name, servers),
            )


def status(state_dir: Path | None = None) -> StackInfo:
    """What the state folder records, with health checked live: pid alive and the protocol answers."""
    state_dir = _resolve(state_dir)
    current = _current(state_dir)
    if current is None:
        raise NotFound(f"no local stack in {state_dir}: start one with `loomctl dev up`")
    return current


def running(state_dir: Path | None = None) -> StackInfo:
    """Like :func:`status`, but NotFound unless both servers are running and answering."""
    info = status(state_dir)
    if not (info.postgres.healthy and info.kafka.healthy):  # what `dev env` points at; other clusters aside
        down_parts = [name for name, part in (("PostgreSQL", info.postgres), ("Kafka", info.kafka)) if not part.healthy]
        raise NotFound(
            f"the local stack in {info.state_dir} is not running ({' and '.join(down_parts)} not answering): "
            "start it with `loomctl dev up`"
        )
    return info


def down(state_dir: Path | None = None, *, keep: bool = False, progress: Progress | None = None) -> None:
    """Stop Kafka, then PostgreSQL, by pid (also when one is already dead); remove the folder unless ``keep``."""
    state_dir = _resolve(state_dir)
    say = progress or _silent
    if not (state_dir / STATE_FILE).is_file():
        # without the stack's own file this folder may be anything: touch nothing in it
        raise NotFound(f"no local stack in {state_dir}")
    with _locked(state_dir):
        record = _read(state_dir) or {}
        pg_root = _postgres_root(state_dir, record)
        failed: list[str] = []
        brokers = {1: (record.get("kafka") or {}).get("pid")}
        brokers |= {c: entry.get("pid") for c, entry in _extra_records(record).items()}
        for c, pid in brokers.items():
            if kafka.is_running(pid, state_dir, c):
                say(f"stopping {_kafka_label(c)} (pid {pid})")
        for c, gone in kafka.stop_many(brokers, state_dir).items():
            entry = _kafka_record(record, c)
            if not gone:
                failed.append(f"{_kafka_label(c)} (pid {brokers[c]})")
            elif entry:
                entry["pid"] = None
        if pg_root is not None:
            # the postmaster's lock file finds it even when stack.json was lost or is stale
            recorded_pid = (record.get("postgres") or {}).get("pid")
            pg_stopped = True
            for pg_pid in dict.fromkeys(p for p in (recorded_pid, postgres.pid_from_file(pg_root)) if p):
                if postgres.is_running(pg_pid, pg_root):
                    say(f"stopping PostgreSQL (pid {pg_pid})")
                if not postgres.stop(pg_pid, pg_root):
                    failed.append(f"PostgreSQL (pid {pg_pid})")
                    pg_stopped = False
            if record.get("postgres") and pg_stopped:
                record["postgres"]["pid"] = None
        if record:
            _write(state_dir, record)
        if failed:
            raise LoomError(f"could not stop {' and '.join(failed)}; kept {state_dir}")
        if keep:
            say(f"kept the data and logs in {state_dir}")
        else:
            _remove(state_dir, pg_root)
            say(f"removed {state_dir}")


def env_lines(info: StackInfo) -> list[str]:
    """Shell lines that point loomctl (and anything reading LOOM_*) at the stack, and Kafka's tools
    (kafka_tools, a later `dev up`) at its Kafka release: for `eval`."""
    lines = [
        f"export {ENV_DATABASE_URL}={shlex.quote(info.database_url or '')}",
        f"export {ENV_BOOTSTRAP_SERVERS}={shlex.quote(info.bootstrap_servers or '')}",
    ]
    if info.kafka_version:
        lines.append(f"export {ENV_KAFKA_VERSION}={shlex.quote(info.kafka_version)}")
    return lines


# --- internals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tools:
    java: str | None
    postgres: postgres.Binaries | None
    postgres_os_user: pwd.struct_passwd | None


def _silent(_message: str) -> None:
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _resolve(state_dir: Path | None) -> Path:
    return (Path(state_dir).expanduser() if state_dir is not None else default_state_dir()).resolve()


def _kafka_release(current: StackInfo | None, asked: str | None) -> str:
    """The Kafka release the stack's brokers are to run: the one it has, else ``asked``, else the pom's.

    A stack asked for another release than it has is refused before anything starts: its brokers, or the data a
    stopped one keeps (formatted for its own metadata version), stay as they are until `loomctl dev down`.
    """
    have = current.kafka_version if current is not None else None
    if have is None:
        return asked or kafka.default_version()
    if asked is not None and asked != have:
        assert current is not None
        what = "runs" if any(c.healthy for c in current.clusters) else "holds the stopped brokers' data of"
        where = "" if current.state_dir == _resolve(None) else f" --dir {shlex.quote(str(current.state_dir))}"
        raise Conflict(
            f"the local stack in {current.state_dir} {what} Kafka {have}, not {asked}: "
            f"run `loomctl dev down{where}` first, then `loomctl dev up{where} --kafka-version {asked}`"
        )
    return have


def _check_clusters(clusters: int | None) -> None:
    if clusters is None:
        return
    if isinstance(clusters, bool) or not isinstance(clusters, int) or not 1 <= clusters <= MAX_CLUSTERS:
        raise BadInput(f"clusters {clusters!r}: the local stack runs 1 to {MAX_CLUSTERS} Kafka clusters")


def _wanted(current: StackInfo | None, clusters: int | None) -> int:
    """How many Kafka clusters the stack is to run: ``clusters``, else as many as it has (one when new)."""
    have = _count(current) if current is not None else 0
    if clusters is None:
        return max(have, 1)
    if clusters < have:
        assert current is not None
        raise Conflict(
            f"the local stack in {current.state_dir} has {have} Kafka clusters and is never shrunk: "
            f"use --clusters {have}, or `loomctl dev down` first to start afresh with {clusters}"
        )
    return clusters


def _needs(current: StackInfo | None, wanted: int) -> tuple[bool, list[int]]:
    """Whether PostgreSQL must start, and the Kafka clusters (numbered from 1) that must."""
    if current is None:
        return True, list(range(1, wanted + 1))
    healthy = {c.name for c in current.clusters if c.healthy}
    return not current.postgres.healthy, [c for c in range(1, wanted + 1) if cluster_name(c) not in healthy]


def _cluster_number(name: str) -> int:
    return 1 if name == DEFAULT_CLUSTER else int(name.removeprefix("dev-"))


def _count(info: StackInfo) -> int:
    """The clusters a stack has: the number of its last."""
    return max((_cluster_number(c.name) for c in info.clusters), default=1)


def _kafka_label(cluster: int) -> str:
    return "Kafka" if cluster == 1 else f"Kafka {cluster_name(cluster)}"


def _extra_records(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The clusters after the first as stack.json records them, by number (a stack.json without them: none)."""
    found: dict[int, dict[str, Any]] = {}
    entries = record.get(_EXTRA_KAFKA)
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and type(entry.get("cluster")) is int and 2 <= entry["cluster"] <= MAX_CLUSTERS:
            found[entry["cluster"]] = entry
    return dict(sorted(found.items()))


def _kafka_record(record: dict[str, Any], cluster: int) -> dict[str, Any] | None:
    if cluster == 1:
        entry = record.get("kafka")
        return entry if isinstance(entry, dict) else None
    return _extra_records(record).get(cluster)


def _set_kafka_record(record: dict[str, Any], cluster: int, entry: dict[str, Any]) -> None:
    if cluster == 1:
        record["kafka"] = entry
        return
    extras = _extra_records(record)
    extras[cluster] = {"cluster": cluster, "name": cluster_name(cluster), **entry}
    record[_EXTRA_KAFKA] = [extras[c] for c in sorted(extras)]


def _prerequisites(*, need_postgres: bool, need_kafka: bool, kafka_version: str) -> _Tools:
    """Find the tools, or say in one message everything that is missing and how to install it."""
    missing: list[str] = []
    packages: list[str] = []
    java = binaries = os_user = None
    if need_kafka:
        java = kafka.find_java()
        if java is None:
            where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else "not on PATH"
            missing.append(f"java, Java {kafka.MIN_JAVA} or newer ({where})")
            packages.append("openjdk-17-jre-headless")
        else:
            major = kafka.java_major(java)
            if major is None or major < kafka.MIN_JAVA:
                missing.append(f"Java {kafka.MIN_JAVA} or newer for Kafka {kafka_version} ({java} is Java {major or 'unknown'})")
                packages.append("openjdk-17-jre-headless")
        if not kafka.jars_cached(kafka_version) and shutil.which("mvn") is None:
            missing.append(f"mvn (Apache Maven), to fetch Kafka {kafka_version} once into {kafka.libs_dir(kafka_version)}")
            packages.append("maven")
    if need_postgres:
        binaries = postgres.find_binaries()
        if binaries is None:
            missing.append(f"the PostgreSQL server programs {', '.join(postgres.TOOLS)} (searched {postgres.searched()})")
            packages.append("postgresql")
        elif binaries.major < MIN_POSTGRES:
            missing.append(f"PostgreSQL {MIN_POSTGRES} or newer (found {binaries.version} in {binaries.bin_dir})")
            packages.append("postgresql")
        try:
            os_user = postgres.server_os_user()
        except KeyError:
            missing.append(f"a '{postgres.SERVER_OS_USER}' user to run PostgreSQL as, since it refuses to run as root")
            packages.append("postgresql")
    if missing:
        raise BackendUnavailable(
            "cannot start the local stack, missing: " + "; ".join(missing) + f"; {_APT_HINT} {' '.join(dict.fromkeys(packages))}"
        )
    return _Tools(java, binaries, os_user)


def _start_postgres(state_dir: Path, record: dict[str, Any], tools: _Tools, started: list[int | str], say: Progress) -> None:
    binaries = tools.postgres
    assert binaries is not None
    root = postgres.prepare_root(state_dir, tools.postgres_os_user)
    if postgres.is_initialized(root):
        if postgres.cluster_major(root) != binaries.major:
            raise Conflict(
                f"{root} holds a PostgreSQL {postgres.cluster_major(root)} cluster but the server found is "
                f"PostgreSQL {binaries.version}: run `loomctl dev down` to start afresh"
            )
    else:
        say(f"initializing PostgreSQL {binaries.version} in {root}")
        postgres.init_cluster(binaries, root, tools.postgres_os_user)
    say(f"starting PostgreSQL {binaries.version}")
    pid, port = postgres.start(binaries, root, tools.postgres_os_user, port=(record.get("postgres") or {}).get("port"))
    record["postgres"] = {
        "pid": pid,
        "port": port,
        "version": binaries.version,
        "bin_dir": str(binaries.bin_dir),
        "root": str(root),
    }
    started.append("postgres")
    _write(state_dir, record)
    postgres.ensure_database(port)


def _start_kafka(
    state_dir: Path,
    record: dict[str, Any],
    java: str,
    libs: Path,
    clusters: list[int],
    started: list[int | str],
    say: Progress,
    *,
    release: str,
) -> None:
    """Start the brokers of ``clusters`` (Kafka ``release``, from ``libs``) side by side, each on the ports it had
    before where they are free."""
    ports: dict[int, tuple[int, int] | None] = {}
    for c in clusters:
        earlier = _kafka_record(record, c) or {}
        ports[c] = (
            (earlier["port"], earlier["controller_port"]) if earlier.get("port") and earlier.get("controller_port") else None
        )
    for c, (pid, port, controller_port) in kafka.start_many(java, libs, state_dir, ports, progress=say).items():
        _set_kafka_record(record, c, {"pid": pid, "port": port, "controller_port": controller_port, "version": release})
        started.append(c)
    _write(state_dir, record)


def _stop_started(state_dir: Path, record: dict[str, Any], started: list[int | str], exc: BaseException, say: Progress) -> None:
    """Undo this call's starts after a failure, newest first (the brokers together), without hiding the original error."""
    brokers = {c: (_kafka_record(record, c) or {}).get("pid") for c in started if isinstance(c, int)}
    try:
        for c, gone in kafka.stop_many(brokers, state_dir).items():
            entry = _kafka_record(record, c)
            if gone:
                if entry:
                    entry["pid"] = None
                say(f"stopped {_kafka_label(c)} again after the failure")
            else:
                exc.add_note(f"could not stop {_kafka_label(c)} (pid {brokers[c]}): run `loomctl dev down`")
    except Exception as cleanup_error:  # noqa: BLE001 - the original error matters more
        exc.add_note(f"stopping Kafka failed too: {cleanup_error}")
    if "postgres" in started:
        part = record["postgres"]
        try:
            if postgres.stop(part["pid"], Path(part["root"])):
                part["pid"] = None
                say("stopped PostgreSQL again after the failure")
            else:
                exc.add_note(f"could not stop PostgreSQL (pid {part['pid']}): run `loomctl dev down`")
        except Exception as cleanup_error:  # noqa: BLE001 - the original error matters more
            exc.add_note(f"stopping PostgreSQL failed too: {cleanup_error}")
    with contextlib.suppress(OSError):
        _write(state_dir, record)


def _refuse_unanswering(current: StackInfo | None) -> None:
    """A recorded server that is alive but does not answer is left alone: it may be busy, not dead."""
    if current is None:
        return
    stuck = []
    if current.postgres.pid and not current.postgres.healthy and postgres.is_running(current.postgres.pid, _pg_root_of(current)):
        stuck.append(f"PostgreSQL (pid {current.postgres.pid}, log {current.postgres.log_file})")
    for cluster in current.clusters:
        c, broker = _cluster_number(cluster.name), cluster.kafka
        if broker.pid and not cluster.healthy and kafka.is_running(broker.pid, current.state_dir, c):
            stuck.append(f"{_kafka_label(c)} (pid {broker.pid}, log {broker.log_file})")
    if stuck:
        raise BackendUnavailable(
            f"{' and '.join(stuck)} running but not answering; wait, or restart with `loomctl dev down` then `loomctl dev up`"
        )


def _pg_root_of(info: StackInfo) -> Path:
    assert info.postgres.data_dir is not None
    return info.postgres.data_dir.parent


def _current(state_dir: Path) -> StackInfo | None:
    record = _read(state_dir)
    return None if record is None else _info(state_dir, record, probe=True)


def _info(state_dir: Path, record: dict[str, Any], *, probe: bool) -> StackInfo:
    """StackInfo from the record; ``probe`` checks health live, otherwise it is taken as healthy."""
    pg = record.get("postgres") or {}
    pg_root = Path(pg["root"]) if pg.get("root") else None
    database_url = postgres.database_url(pg["port"]) if pg.get("port") else None
    pg_healthy = bool(pg.get("pid")) and pg_root is not None and database_url is not None
    if probe:
        pg_healthy = pg_healthy and postgres.is_running(pg["pid"], pg_root) and postgres.answers(database_url)  # type: ignore[arg-type]
    clusters = [_cluster_info(state_dir, 1, record.get("kafka") or {}, probe=probe)]
    clusters += [_cluster_info(state_dir, c, entry, probe=probe) for c, entry in _extra_records(record).items()]
    started_at = record.get("started_at")
    return StackInfo(
        state_dir=state_dir,
        database_url=database_url,
        bootstrap_servers=clusters[0].bootstrap_servers,
        postgres=PostgresInfo(
            port=pg.get("port"),
            pid=pg.get("pid"),
            version=pg.get("version"),
            healthy=pg_healthy,
            data_dir=postgres.data_dir(pg_root) if pg_root else None,
            log_file=postgres.log_file(pg_root) if pg_root else None,
        ),
        kafka=clusters[0].kafka,
        started_at=dt.datetime.fromisoformat(started_at) if started_at else None,
        clusters=tuple(clusters),
    )


def _cluster_info(state_dir: Path, cluster: int, kf: dict[str, Any], *, probe: bool) -> DevCluster:
    bootstrap = kafka.bootstrap_servers(kf["port"]) if kf.get("port") else None
    healthy = bool(kf.get("pid")) and bootstrap is not None
    if probe:
        healthy = healthy and kafka.is_running(kf["pid"], state_dir, cluster) and kafka.answers(bootstrap)  # type: ignore[arg-type]
    broker = KafkaInfo(
        port=kf.get("port"),
        controller_port=kf.get("controller_port"),
        pid=kf.get("pid"),
        version=kf.get("version"),
        healthy=healthy,
        data_dir=kafka.data_dir(state_dir, cluster) if kf else None,
        log_file=kafka.log_file(state_dir, cluster) if kf else None,
        cluster_id=kafka.cluster_id(state_dir, cluster) if kf else None,
    )
    return DevCluster(cluster_name(cluster), bootstrap, healthy, broker)


def _read(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LoomError(f"cannot read {state_dir / STATE_FILE}: {exc}; remove the stack with `loomctl dev down`") from None
    return data if isinstance(data, dict) else None


def _write(state_dir: Path, record: dict[str, Any]) -> None:
    temp = state_dir / f".{STATE_FILE}.tmp"
    temp.write_text(json.dumps({"format": 1, **record}, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, state_dir / STATE_FILE)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    import fcntl

    with open(state_dir / _LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _postgres_root(state_dir: Path, record: dict[str, Any]) -> Path | None:
    recorded = (record.get("postgres") or {}).get("root")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    link = state_dir / "postgres"
    return link.resolve() if link.is_dir() else None


def _remove(state_dir: Path, pg_root: Path | None) -> None:
    """Remove what the stack wrote; a folder that also holds other files keeps them."""
    link = state_dir / "postgres"
    if pg_root is not None and link.is_symlink() and link.resolve() == pg_root:
        shutil.rmtree(pg_root)  # the cluster's private folder outside (see postgres.prepare_root)
    for name in _OWN_ENTRIES:
        path = state_dir / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    with contextlib.suppress(OSError):
        state_dir.rmdir()
