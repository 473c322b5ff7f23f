"""A tiny Kafka Streams application for tests and demos: a streams group (KIP-1071) to look at.

Apache Kafka's own kafka-streams-examples (WordCountDemo) is not on Maven Central, so loomctl ships the smallest
application there is, ``MiniStreams.java`` beside this module: it copies one topic to another with
``group.protocol=streams``. Its class path, kafka-streams of the local broker's Kafka version and what that needs,
comes from Maven Central through ``streams-pom.xml`` and is cached beside the broker's jars, so only the first run on
a machine needs Maven and the network. Java runs the source file itself (JDK 11+), so nothing is compiled ahead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from loomctl.devstack import kafka
from loomctl.devstack._process import Progress, clean
from loomctl.devstack.kafka_tools import ToolFailed, ToolUnavailable

MAIN = "MiniStreams.java"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def libs_dir() -> Path:
    return kafka.cache_dir() / f"kafka-streams-{kafka.version()}" / "libs"


def ensure_jars(*, progress: Progress | None = None) -> Path:
    """The folder of kafka-streams' jars, fetched with Maven the first time (into a temporary sibling folder that is
    renamed into place only when complete). ToolUnavailable without mvn, or when Maven cannot fetch them."""
    libs = libs_dir()
    if libs.is_dir():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolUnavailable(f"mvn (Apache Maven) is needed once to fetch kafka-streams {kafka.version()} into {libs}")
    with kafka.fetch_into(libs) as work:
        pom = resources.files("loomctl.devstack").joinpath("streams-pom.xml").read_text(encoding="utf-8")
        (work / "pom.xml").write_text(pom.replace("KAFKA_VERSION", kafka.version()), encoding="utf-8")
        if progress:
            progress(f"fetching kafka-streams {kafka.version()} from Maven Central (once) into {libs}")
        argv = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(work / "pom.xml"), f"{_DEPENDENCY_PLUGIN}:copy-dependencies"]
        argv += ["-DincludeScope=runtime", f"-DoutputDirectory={work / 'libs'}"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, cwd=work, timeout=900)
        except subprocess.TimeoutExpired:
            raise ToolUnavailable("mvn did not fetch kafka-streams within 15 minutes") from None
        if result.returncode != 0 or not (work / "libs" / f"kafka-streams-{kafka.version()}.jar").is_file():
            tail = "\n".join(clean(result.stdout + "\n" + result.stderr).splitlines()[-15:])
            raise ToolUnavailable(f"mvn could not fetch kafka-streams {kafka.version()} (exit {result.returncode}):\n{tail}")
    return libs


@dataclass
class StreamsApp:
    """A running MiniStreams: its process and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return "-> RUNNING" in self.output()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the application closes and leaves its group), then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextlib.contextmanager
def running(bootstrap_servers: str, application_id: str, source: str, sink: str, work_dir: Path) -> Iterator[StreamsApp]:
    """MiniStreams copying ``source`` to ``sink`` as streams group ``application_id``, stopped at the end.
    ToolUnavailable without a JDK (java that runs source files) or the jars."""
    java = kafka.find_java()
    if java is None or shutil.which("javac", path=str(Path(java).resolve().parent)) is None:
        raise ToolUnavailable(
            "running MiniStreams.java needs a JDK (java and javac), e.g. apt-get install openjdk-17-jdk-headless"
        )
    libs = ensure_jars()
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / "streams.log"
    with resources.as_file(resources.files("loomctl.devstack").joinpath(MAIN)) as source_file, open(log, "ab") as out:
        argv = [java, "-Xmx256m", "-cp", f"{libs}{os.sep}*", str(source_file)]
        argv += [bootstrap_servers, application_id, source, sink, str(work_dir / "state")]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=work_dir)
        app = StreamsApp(process, log)
        try:
            yield app
        finally:
            app.stop()


def wait_running(app: StreamsApp, timeout: float = 120.0) -> None:
    """Until the application says it is RUNNING; ToolFailed with its last lines when it exits or times out."""
    deadline = time.monotonic() + timeout
    while not app.running:
        if app.process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(app.output().splitlines()[-15:])
            raise ToolFailed(f"MiniStreams did not reach RUNNING (exit {app.process.poll()}):\n{tail}")
        time.sleep(0.2)
