"""The local broker's heap (KAFKA_HEAP_OPTS) and open files: pure, no broker started."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from loomctl.devstack import kafka
from loomctl.errors import BadInput


def test_the_heap_is_512_mb_unless_kafka_heap_opts_says_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    assert kafka.heap_flags() == ("-Xms256m", "-Xmx512m")
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "  -Xms1g   -Xmx4g ")
    assert kafka.heap_flags() == ("-Xms1g", "-Xmx4g")
    argv = kafka._java_argv("java", kafka.cache_dir(), kafka.cache_dir(), "kafka.Kafka")
    assert "-Xmx4g" in argv and "-Xmx512m" not in argv


@pytest.mark.parametrize("value", ["4g", "-Xmx4g -Dfoo=bar", "-X", "--Xmx4g; rm -rf /"])
def test_kafka_heap_opts_takes_jvm_x_options_only(monkeypatch, value) -> None:
    monkeypatch.setenv("KAFKA_HEAP_OPTS", value)
    with pytest.raises(BadInput, match="KAFKA_HEAP_OPTS=.*give JVM -X options") as caught:
        kafka.heap_flags()
    assert "\n" not in str(caught.value)


def test_a_child_gets_the_open_files_it_may_have() -> None:
    """From a low soft limit, raised as far as permitted (at least the hard limit), and never lowered."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code = ("import resource; from loomctl.devstack._process import raised_open_files; raised_open_files(%d);"
            " print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])")

    def soft_limit_after(wanted: int) -> int:
        result = subprocess.run([sys.executable, "-c", code % wanted], capture_output=True, text=True, check=True,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
        return int(result.stdout)

    expected = 10 ** 6 if hard == resource.RLIM_INFINITY else hard
    assert soft_limit_after(10 ** 6) >= min(10 ** 6, expected)
    assert soft_limit_after(16) == 256  # never lowered
