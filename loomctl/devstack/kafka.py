"""A single-node Apache Kafka (KRaft, broker and controller in one JVM) on loopback ports.

A stack may run several such brokers, each a cluster of its own: cluster 1 lives in the state folder's
``kafka/``, cluster N in ``kafka-N/`` (every function here takes the cluster's number, 1 by default).

The jars come from Maven Central through the pom that ships beside this module and are cached
per Kafka version, so only the first `loomctl dev up` of a version on a machine needs Maven and the network.
The pom names the default release; ``LOOM_DEV_KAFKA_VERSION`` (or `loomctl dev up --kafka-version`) picks another,
and :func:`version` is what the devstack starts and whose tools :mod:`loomctl.devstack.kafka_tools` runs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from loomctl.devstack import _process
from loomctl.devstack._process import Progress
from loomctl.errors import BackendUnavailable, BadInput, NotFound

NODE_ID = 1
MIN_JAVA = 17
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20
HEAP_FLAGS = ("-Xms256m", "-Xmx512m")
"""The broker's heap unless KAFKA_HEAP_OPTS (the variable of Kafka's own launch scripts) says otherwise: enough
for a few thousand partitions; tens of thousands want more (e.g. KAFKA_HEAP_OPTS="-Xms1g -Xmx3g")."""
OPEN_FILES = 200_000
"""File descriptors the broker may hold: a log and its indexes per partition, so tens of thousands of
partitions need more than a usual 1,024 or 20,000 limit (Kafka's documentation suggests 100,000 or more)."""
JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MVN_TIMEOUT_S = 900

ENV_VERSION = "LOOM_DEV_KAFKA_VERSION"
"""Picks the Kafka release of `loomctl dev up`, of the test session's broker and of Kafka's tools (kafka_tools)."""
OLDEST_VERSION = (4, 0, 0)
"""The devstack runs KRaft only and logs through log4j 2, as Kafka has since 4.0."""
_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})", re.ASCII)


@functools.cache
def default_version() -> str:
    """The Kafka version pinned in the packaged pom: what runs unless LOOM_DEV_KAFKA_VERSION or --kafka-version says."""
    return _pom_property("kafka.version")


def check_version(text: str, *, given_as: str = "--kafka-version") -> str:
    """``text`` when it names a Kafka release the devstack can run (X.Y.Z, 4.0.0 or later); BadInput otherwise."""
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        from loomctl.validation import shown

        raise BadInput(f"{given_as} {shown(text)!r}: give a Kafka release as X.Y.Z, e.g. {default_version()}")
    if tuple(int(part) for part in match.groups()) < OLDEST_VERSION:
        oldest = ".".join(map(str, OLDEST_VERSION))
        raise BadInput(f"{given_as} {text}: the local stack runs Kafka {oldest} or later (KRaft and log4j 2 only)")
    return text


def requested_version() -> str | None:
    """The release LOOM_DEV_KAFKA_VERSION asks for (checked), None where it is unset or empty."""
    text = os.environ.get(ENV_VERSION, "")
    return check_version(text, given_as=ENV_VERSION) if text else None


def version() -> str:
    """The Kafka release the devstack starts and whose tools run: LOOM_DEV_KAFKA_VERSION, else the pom's."""
    return requested_version() or default_version()


def _resource(name: str) -> bytes:
    return resources.files("loomctl.devstack").joinpath(name).read_bytes()


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/loomctl`` (``~/.cache/loomctl`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "loomctl"


def libs_dir(kafka_version: str | None = None) -> Path:
    """Where the jars of ``kafka_version`` (default: :func:`version`) are cached."""
    return cache_dir() / f"kafka-{check_version(kafka_version) if kafka_version else version()}" / "libs"


def jars_cached(kafka_version: str | None = None) -> bool:
    return libs_dir(kafka_version).is_dir()


def jars_version(libs: Path) -> str | None:
    """The Kafka release whose broker jar (``kafka_2.13-X.Y.Z.jar``) is in ``libs``."""
    for jar in sorted(libs.glob("kafka_2.13-*.jar")):
        found = _VERSION.fullmatch(jar.name.removeprefix("kafka_2.13-").removesuffix(".jar"))
        if found:
            return found.group(0)
    return None


@contextlib.contextmanager
def fetch_into(libs: Path) -> Iterator[Path]:
    """A temporary sibling folder of ``libs`` for Maven to fetch into: its ``libs`` is renamed into place when the
    block ends without an error, and the folder is removed either way, so an interrupted download never leaves a
    cache that looks usable (a process that finished the same download first wins: its copy is used)."""
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=libs.parent))
    try:
        yield work
        try:
            os.rename(work / "libs", libs)
        except OSError:
            if not libs.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_jars(kafka_version: str | None = None, *, progress: Progress | None = None) -> Path:
    """The folder of the jars of ``kafka_version`` (default: :func:`version`), fetched with Maven the first time.

    Two Maven runs: the first lists the log4j release Kafka's own poms name, the second copies the class path with
    the slf4j-to-log4j bridge of that release (the pom's ``log4j-bridge`` profile). Maven writes into a temporary
    sibling folder that is renamed into place only when complete, so an interrupted download never leaves a cache
    that looks usable. A release Maven Central does not have is NotFound; any other failure of mvn is
    BackendUnavailable, with mvn's own error line.
    """
    kafka_version = check_version(kafka_version) if kafka_version is not None else version()
    libs = libs_dir(kafka_version)
    if libs.is_dir():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BackendUnavailable(
            f"mvn (Apache Maven) is needed once to fetch Kafka {kafka_version} from Maven Central into {libs}: "
            "apt-get install maven"
        )
    try:
        with fetch_into(libs) as work:
            (work / "pom.xml").write_bytes(_resource("kafka-pom.xml"))
            if progress:
                progress(f"fetching Apache Kafka {kafka_version} jars from Maven Central (once) into {libs}")
            listing = work / "log4j.txt"
            _mvn(mvn, work, kafka_version, "list", "-DincludeGroupIds=org.apache.logging.log4j", f"-DoutputFile={listing}")
            log4j = kafkas_log4j(listing.read_text(encoding="utf-8", errors="replace")) or _pom_property("log4j.version")
            _mvn(mvn, work, kafka_version, "copy-dependencies", "-Plog4j-bridge", f"-Dlog4j.version={log4j}",
                 f"-DoutputDirectory={work / 'libs'}")  # fmt: skip
            problem = class_path_problem(work / "libs", kafka_version)
            if problem:
                raise BackendUnavailable(f"the jars mvn fetched for Kafka {kafka_version} {problem}")
    finally:
        if not libs.is_dir():
            with contextlib.suppress(OSError):  # a failed fetch leaves no kafka-X.Y.Z folder (unless another uses it)
                libs.parent.rmdir()
    return libs


def _mvn(mvn: str, work: Path, kafka_version: str, goal: str, *args: str) -> None:
    """One goal of the dependency plugin over the pom in ``work``, for ``kafka_version``."""
    argv = [
        mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(work / "pom.xml"), f"-Dkafka.version={kafka_version}",
        f"{_DEPENDENCY_PLUGIN}:{goal}", "-DincludeScope=runtime", *args,
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=work, timeout=_MVN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"mvn did not fetch Kafka {kafka_version} within {_MVN_TIMEOUT_S // 60} minutes") from None
    if result.returncode != 0:
        raise mvn_failure(kafka_version, result.returncode, result.stdout + "\n" + result.stderr)


def mvn_failure(kafka_version: str, exit_code: int, output: str) -> NotFound | BackendUnavailable:
    """One line for a failed mvn run: NotFound where Maven Central has no such Kafka release, else mvn's error line."""
    text = _process.clean(output)
    artifact = f"org.apache.kafka:kafka_2.13:jar:{kafka_version}"
    if re.search(rf"Could not find artifact {re.escape(artifact)}\b|{re.escape(artifact)} was not found in", text):
        return NotFound(
            f"Kafka {kafka_version} is not on Maven Central (mvn found no {artifact}): "
            f"give a released version, e.g. {default_version()}"
        )
    errors = [line.removeprefix("[ERROR]").strip() for line in text.splitlines() if line.startswith("[ERROR]")]
    said = next((line for line in errors if line), "") or next((line for line in text.splitlines() if line.strip()), "")
    said = said.removesuffix("-> [Help 1]").strip()
    if len(said) > 300:
        said = said[:297] + "..."
    return BackendUnavailable(f"mvn could not fetch Kafka {kafka_version} (exit {exit_code}): {said or 'no output'}")


_LISTED_LOG4J_CORE = re.compile(r"org\.apache\.logging\.log4j:log4j-core:jar:([0-9][0-9A-Za-z.\-]*):")


def kafkas_log4j(listing: str) -> str | None:
    """The log4j-core release in ``mvn dependency:list`` output of Kafka's class path, None where it names none."""
    match = _LISTED_LOG4J_CORE.search(listing)
    return match.group(1) if match else None


def _pom_property(name: str) -> str:
    root = ET.fromstring(_resource("kafka-pom.xml"))
    for element in root.iter():
        if element.tag.endswith("}" + name) or element.tag == name:
            return (element.text or "").strip()
    raise AssertionError(f"kafka-pom.xml does not set {name}")


def class_path_problem(libs: Path, kafka_version: str) -> str | None:
    """What keeps ``libs`` from running Kafka ``kafka_version`` with its logging alive, None when nothing does:
    the broker's jar, slf4j-api 1.7.x alone (2.x ignores the 1.x binding) and one slf4j binding whose log4j-core
    is beside it."""
    names = {p.name for p in libs.iterdir()} if libs.is_dir() else set()

    def found(prefix: str) -> list[str]:
        return sorted(n[len(prefix) : -len(".jar")] for n in names if n.startswith(prefix) and n.endswith(".jar"))

    if f"kafka_2.13-{kafka_version}.jar" not in names:
        return f"lack kafka_2.13-{kafka_version}.jar"
    slf4j = found("slf4j-api-")
    if len(slf4j) != 1 or not slf4j[0].startswith("1.7."):
        return f"hold slf4j-api {', '.join(slf4j) or 'none'}, not one 1.7.x: Kafka's logging would go silent"
    bridges, cores = found("log4j-slf4j-impl-"), found("log4j-core-")
    if found("log4j-slf4j2-impl-") or len(bridges) != 1 or cores != bridges:
        return f"hold log4j-slf4j-impl {', '.join(bridges) or 'none'} beside log4j-core {', '.join(cores) or 'none'}"
    return None


def find_java() -> str | None:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else java on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def java_major(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_java_major(result.stderr + result.stdout)


def parse_java_major(version_output: str) -> int | None:
    """17 from 'openjdk version "17.0.15"', 8 from 'java version "1.8.0_402"'."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes its Uuids: 22 characters of URL-safe base64."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka never issues such ids: they read like options
            return text


def home_name(cluster: int = 1) -> str:
    """The folder of a cluster's broker in the stack's state folder: ``kafka`` for the first, ``kafka-2``, ..."""
    return "kafka" if cluster == 1 else f"kafka-{cluster}"


def home(state_dir: Path, cluster: int = 1) -> Path:
    return state_dir / home_name(cluster)


def config_file(state_dir: Path, cluster: int = 1) -> Path:
    return home(state_dir, cluster) / "server.properties"


def log_dir(state_dir: Path, cluster: int = 1) -> Path:
    return home(state_dir, cluster) / "logs"


def log_file(state_dir: Path, cluster: int = 1) -> Path:
    return log_dir(state_dir, cluster) / "server.log"


def console_file(state_dir: Path, cluster: int = 1) -> Path:
    return log_dir(state_dir, cluster) / "kafka.out"


def data_dir(state_dir: Path, cluster: int = 1) -> Path:
    return home(state_dir, cluster) / "data"


def is_formatted(state_dir: Path, cluster: int = 1) -> bool:
    return (data_dir(state_dir, cluster) / "meta.properties").is_file()


def cluster_id(state_dir: Path, cluster: int = 1) -> str | None:
    """The cluster id the storage was formatted with (``cluster.id`` of meta.properties), None before formatting."""
    try:
        text = (data_dir(state_dir, cluster) / "meta.properties").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cluster.id":
            return value.strip() or None
    return None


def bootstrap_servers(port: int) -> str:
    return f"127.0.0.1:{port}"


@dataclass(frozen=True)
class SaslListener:
    """A second listener for clients that authenticate: SASL_PLAINTEXT with the PLAIN mechanism on ``port``, for
    ``users`` (name to password). The first listener stays open (the stack's own checks use it)."""

    port: int
    users: Mapping[str, str]

    def properties(self) -> dict[str, str]:
        for name, password in self.users.items():
            if not (name.isalnum() and password.isalnum()):
                raise ValueError("SASL test users and passwords are letters and digits only")
        users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl.plain.sasl.jaas.config": f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
        }


def server_properties(port: int, controller_port: int, data: Path, sasl: SaslListener | None = None) -> dict[str, str]:
    """One node that is both broker and controller, sized for a small shared machine and fast tests."""
    props = _server_properties(port, controller_port, data)
    if sasl is not None:
        props["listeners"] += f",SASL://127.0.0.1:{sasl.port}"
        props["advertised.listeners"] += f",SASL://127.0.0.1:{sasl.port}"
        props["listener.security.protocol.map"] += ",SASL:SASL_PLAINTEXT"
        props.update(sasl.properties())
    return props


def _server_properties(port: int, controller_port: int, data: Path) -> dict[str, str]:
    return {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # a static quorum: the ports may change between restarts of the same data folder
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data),
        # Topics exist only when created on purpose, as on most production clusters: a typo in
        # a topic name then fails loudly instead of creating a topic.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # groups form at once, and tests may use short session timeouts
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "group.consumer.min.session.timeout.ms": "1000",
        # The guide's advice for rebalancing trouble is a 2-minute session timeout; the consumer
        # protocol's default bound (60 s) would refuse it where the classic one (30 min) takes it.
        # Give both protocols the classic bound, as an operator following the guide would.
        "group.consumer.max.session.timeout.ms": "1800000",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "log.cleaner.dedupe.buffer.size": str(2 * 1024 * 1024),
    }


def write_config(state_dir: Path, port: int, controller_port: int, cluster: int = 1, sasl: SaslListener | None = None) -> Path:
    path = config_file(state_dir, cluster)
    props = server_properties(port, controller_port, data_dir(state_dir, cluster), sasl)
    path.write_text(
        "# written by loomctl dev at each start\n" + "".join(f"{k}={v}\n" for k, v in props.items()),
        encoding="utf-8",
    )
    (home(state_dir, cluster) / "log4j2.properties").write_bytes(_resource("kafka-log4j2.properties"))
    return path


def heap_flags() -> tuple[str, ...]:
    """HEAP_FLAGS, or the JVM options of KAFKA_HEAP_OPTS when it is set (-X options only)."""
    from loomctl.errors import BadInput

    given = os.environ.get("KAFKA_HEAP_OPTS", "").split()
    if not given:
        return HEAP_FLAGS
    if not all(o.startswith("-X") and len(o) > 2 for o in given):
        raise BadInput(f"KAFKA_HEAP_OPTS={' '.join(given)!r}: give JVM -X options, e.g. KAFKA_HEAP_OPTS='-Xms1g -Xmx3g'")
    return tuple(given)


def _java_argv(java: str, libs: Path, state_dir: Path, main_class: str, *args: str, cluster: int = 1) -> list[str]:
    return [
        java,
        *heap_flags(),
        *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={home(state_dir, cluster) / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={log_dir(state_dir, cluster)}",
        "-cp",
        f"{libs}{os.sep}*",
        main_class,
        *args,
    ]


def start(
    java: str,
    libs: Path,
    state_dir: Path,
    *,
    progress: Progress | None = None,
    attempts: int = 3,
    ports: tuple[int, int] | None = None,
    cluster: int = 1,
    sasl: SaslListener | None = None,
) -> tuple[int, int, int]:
    """Format the storage if new, start the broker and wait until it serves metadata.

    ``ports`` (port, controller port) are tried first when both are free, so a restarted broker
    keeps the address its clients know. ``cluster`` chooses the broker's folder (:func:`home`).
    ``sasl`` adds a listener for clients that authenticate (tests). Returns (pid, port, controller_port).
    """
    return start_many(java, libs, state_dir, {cluster: ports}, progress=progress, attempts=attempts, sasl=sasl)[cluster]


@dataclass(frozen=True)
class _Launched:
    pid: int
    port: int
    controller_port: int
    log_offsets: dict[Path, int]


def start_many(
    java: str,
    libs: Path,
    state_dir: Path,
    clusters: Mapping[int, tuple[int, int] | None],
    *,
    progress: Progress | None = None,
    attempts: int = 3,
    sasl: SaslListener | None = None,
) -> dict[int, tuple[int, int, int]]:
    """Start the brokers of independent clusters side by side, as :func:`start` starts one.

    ``clusters`` maps each cluster (its folder, see :func:`home`) to the ports to try first. Every
    broker is launched before any is waited for, so their JVMs start at the same time; a broker
    whose ports were taken meanwhile is started again on others. When one fails (or the wait is
    interrupted), every broker this call launched is stopped before the error propagates.
    Returns (pid, port, controller_port) per cluster.
    """
    if sasl is not None and len(clusters) != 1:
        raise ValueError("a SASL listener is one broker's: start the clusters one by one")
    for cluster in clusters:
        for folder in (home(state_dir, cluster), log_dir(state_dir, cluster), data_dir(state_dir, cluster)):
            folder.mkdir(parents=True, exist_ok=True)
    launched: dict[int, _Launched] = {}
    started: dict[int, tuple[int, int, int]] = {}
    chosen: set[int] = set()  # ports given to this call's brokers: none may get another's
    pending: dict[int, tuple[int, int] | None] = dict(clusters)
    try:
        for attempt in range(1, attempts + 1):
            for cluster, wanted in pending.items():
                ports = _pick_ports(wanted if attempt == 1 else None, chosen)
                launched[cluster] = _launch(java, libs, state_dir, cluster, ports, progress, sasl)
            retry: dict[int, tuple[int, int] | None] = {}
            for cluster in pending:
                one = launched[cluster]
                try:
                    _wait_ready(one.pid, one.port, state_dir, one.log_offsets, cluster=cluster)
                except _PortTaken:
                    del launched[cluster]  # it has exited
                    if attempt == attempts:
                        raise BackendUnavailable(
                            f"Kafka could not bind its ports ({one.port}, {one.controller_port}): already in use"
                        ) from None
                    retry[cluster] = None
                else:
                    started[cluster] = (one.pid, one.port, one.controller_port)
            pending = retry
            if not pending:
                return started
    except BaseException:
        # failed or interrupted while starting: leave no broker of this call behind
        stop_many({cluster: one.pid for cluster, one in launched.items()}, state_dir)
        raise
    raise AssertionError("unreachable")


def _pick_ports(wanted: tuple[int, int] | None, chosen: set[int]) -> tuple[int, int]:
    if wanted and not any(p in chosen or _process.port_open(p) for p in wanted) and wanted[0] != wanted[1]:
        picked = wanted
    else:
        port = _process.free_port()
        while port in chosen:
            port = _process.free_port()
        controller_port = _process.free_port()
        while controller_port == port or controller_port in chosen:
            controller_port = _process.free_port()
        picked = (port, controller_port)
    chosen.update(picked)
    return picked


def _launch(
    java: str,
    libs: Path,
    state_dir: Path,
    cluster: int,
    ports: tuple[int, int],
    progress: Progress | None,
    sasl: SaslListener | None,
) -> _Launched:
    """Write the config, format the storage if new and start the JVM, without waiting for it."""
    port, controller_port = ports
    config = write_config(state_dir, port, controller_port, cluster, sasl)
    if not is_formatted(state_dir, cluster):
        _format(java, libs, state_dir, config, cluster=cluster)
    if progress:
        where = "" if cluster == 1 else f" ({home_name(cluster)})"
        release = jars_version(libs)
        progress(f"starting Apache Kafka{f' {release}' if release else ''} on 127.0.0.1:{port}{where}")
    offsets = {path: _process.size(path) for path in (log_file(state_dir, cluster), console_file(state_dir, cluster))}
    pid = _process.launch(
        _java_argv(java, libs, state_dir, "kafka.Kafka", str(config), cluster=cluster),
        log=console_file(state_dir, cluster),
        cwd=home(state_dir, cluster),
        open_files=OPEN_FILES,
    )
    return _Launched(pid, port, controller_port, offsets)


class _PortTaken(Exception):
    pass


def _format(java: str, libs: Path, state_dir: Path, config: Path, *, cluster: int = 1) -> None:
    """Format the storage with a new random cluster id: every cluster formatted here is a cluster of its own."""
    argv = _java_argv(
        java, libs, state_dir, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(config), cluster=cluster
    )
    try:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=home(state_dir, cluster), timeout=120)
    except subprocess.TimeoutExpired:
        raise BackendUnavailable("formatting the Kafka storage took over 2 minutes") from None
    if result.returncode != 0:
        raise BackendUnavailable(
            f"formatting the Kafka storage failed (exit {result.returncode}): "
            f"{_process.clean(result.stderr + result.stdout)[-2000:]}"
        )


def _wait_ready(
    pid: int,
    port: int,
    state_dir: Path,
    log_offsets: dict[Path, int],
    timeout: float = READY_TIMEOUT_S,
    *,
    cluster: int = 1,
) -> None:
    """Wait for the Kafka protocol itself to answer with this broker in the metadata, not for a log line."""
    deadline = time.monotonic() + timeout
    marker = str(config_file(state_dir, cluster))
    while True:
        if not _process.is_running(pid, marker):
            logs = _logs(log_offsets)
            if "Address already in use" in logs:
                raise _PortTaken()
            raise BackendUnavailable(f"Kafka exited during start-up; its last log lines:\n{logs}")
        if _process.port_open(port) and answers(bootstrap_servers(port), timeout=2.0):
            return
        if time.monotonic() >= deadline:
            raise BackendUnavailable(
                f"Kafka did not answer on port {port} within {timeout:.0f} s; its last log lines:\n{_logs(log_offsets)}"
            )
        time.sleep(0.2)


def _logs(log_offsets: dict[Path, int]) -> str:
    """What this start wrote to the broker's log and to its console."""
    parts = []
    for path, offset in log_offsets.items():
        text = _process.written_since(path, offset)
        if text:
            parts.append(f"--- {path}\n{text}")
    return "\n".join(parts) or "(no log output)"


def answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """A metadata request succeeds and lists our broker (so it is registered and unfenced)."""
    import logging

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # librdkafka logs every refused connection to stderr unless given a logger
    quiet = logging.getLogger("loomctl.devstack.kafka.probe")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet, "socket.connection.setup.timeout.ms": 2000}
    client = AdminClient(config)
    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return NODE_ID in metadata.brokers


def is_running(pid: int | None, state_dir: Path, cluster: int = 1) -> bool:
    return _process.is_running(pid, str(config_file(state_dir, cluster)))


def stop(pid: int | None, state_dir: Path, cluster: int = 1) -> bool:
    """SIGTERM (a controlled shutdown), then SIGKILL; True once the broker is gone."""
    steps = [(signal.SIGTERM, float(STOP_TIMEOUT_S)), (signal.SIGKILL, 5.0)]
    return _process.terminate(pid, str(config_file(state_dir, cluster)), steps)


def stop_many(pids: Mapping[int, int | None], state_dir: Path) -> dict[int, bool]:
    """Stop several clusters' brokers (cluster: pid) side by side: each gets its SIGTERM before any is waited
    for, so their controlled shutdowns overlap. True per cluster once its broker is gone (or already was)."""
    for cluster, pid in pids.items():
        if pid and is_running(pid, state_dir, cluster):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
    return {cluster: stop(pid, state_dir, cluster) for cluster, pid in pids.items()}
