"""`lag collect --web-config`: TLS, client certificates, bcrypt basic auth and headers, seen from the real `curl` and a
real Prometheus against a real collector; the file re-read while it runs; a bad file refused at start in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from support import clean_env, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-scrape"
USER = "prometheus"


# -- a CA, a server certificate and two client certificates, made with the openssl CLI ------------------------------


@dataclass(frozen=True)
class Pki:
    folder: Path

    def __getitem__(self, name: str) -> str:
        return str(self.folder / name)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(folder: Path, name: str, subject: str, sans: str, usage: str, *, key: str | None = None) -> None:
    """``name``.crt signed by the CA for a new key ``name``.key (or the existing ``key``), with these SANs."""
    (folder / f"{name}.ext").write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\n")
    if key is None:
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={subject}", cwd=folder)  # fmt: skip
    else:
        _openssl("req", "-new", "-key", key, "-out", f"{name}.csr", "-subj", f"/CN={subject}", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=loomctl test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)  # fmt: skip
    _issue(folder, "server", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth")
    _issue(folder, "client-ok", "scraper", "DNS:scraper.test,URI:spiffe://loom/prometheus", "clientAuth")
    _issue(folder, "client-bad", "intruder", "DNS:intruder.test,email:intruder@example.test", "clientAuth")
    _issue(folder, "other", "someone", "DNS:someone.test", "serverAuth")  # a key that is not the server's
    return Pki(folder)


def _hash(password: str, cost: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def _write(path: Path, text: str) -> None:
    """Replaced in one step, as a deployment replaces a file (a reader never sees half of it)."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    os.replace(staged, path)


# -- a bad file at start: one line, exit 2 --------------------------------------------------------------------------


def _start_refused(web: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(PYTHONPATH=str(ROOT))
    env.pop("LOOM_DATABASE_URL", None)
    argv = [sys.executable, "-m", "loomctl", "lag", "collect", "--listen", "127.0.0.1:0", "--web-config", str(web), *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


BAD_FILES = {
    "missing file": (None, "no such file"),
    "bad YAML": ("basic_auth_users: [\n  {HASH}", "not valid YAML"),
    "unknown key": ("tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  ocsp: true\n", "unknown key 'ocsp'"),
    "unknown top key": ("basic_auth: {{prometheus: '{HASH}'}}\n", "unknown key 'basic_auth'"),
    "repeated key": ("basic_auth_users:\n  a: '{HASH}'\n  a: '{HASH}'\n", "given twice"),
    "bad hash": ("basic_auth_users:\n  prometheus: '{HASH}x'\n", "the hash of user 'prometheus' is not a bcrypt hash"),
    "plain password": ("basic_auth_users:\n  prometheus: {PASSWORD}\n", "is not a bcrypt hash"),
    "missing cert": ("tls_server_config:\n  cert_file: {folder}/nowhere.crt\n  key_file: {server.key}\n", "nowhere.crt: no such file"),
    "no key": ("tls_server_config:\n  cert_file: {server.crt}\n", "missing one of key or key_file"),
    "cert/key mismatch": ("tls_server_config:\n  cert_file: {server.crt}\n  key_file: {other.key}\n", "do not match"),
    "bad client_auth_type": (
        "tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  client_auth_type: VerifyAlways\n",
        "client_auth_type 'VerifyAlways' is not one of",
    ),
    "unverified client_auth_type": (
        "tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  client_auth_type: RequireAnyClientCert\n",
        "RequireAnyClientCert is not supported by loomctl",
    ),
    "client CA without client auth": (
        "tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  client_ca_file: {ca.crt}\n",
        "without a client_auth_type",
    ),
    "header not allowed": ("http_server_config:\n  headers:\n    Server: loomctl\n", "unknown key 'Server'"),
    "header value not allowed": ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options must be one of"),
    "unknown cipher": (
        "tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
        "unknown cipher 'TLS_RSA_WITH_RC4_128_SHA'",
    ),
    "curve preferences": (
        "tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  curve_preferences: [X25519]\n",
        "curve_preferences is not supported by loomctl",
    ),
    "unknown TLS version": ("tls_server_config:\n  cert_file: {server.crt}\n  key_file: {server.key}\n  min_version: SSL3\n", "min_version 'SSL3'"),
    "TLS settings without a certificate": ("tls_server_config:\n  min_version: TLS13\n", "without a certificate"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_at_start_is_one_line_and_exit_2_without_the_hash(case, pki, tmp_path) -> None:
    template, expected = BAD_FILES[case]
    hashed = _hash(PASSWORD, 4)
    web = tmp_path / "web.yml"
    if template is not None:
        names = {k: pki[k] for k in ("server.crt", "server.key", "other.key", "ca.crt")}
        text = template
        for name, path in names.items():
            text = text.replace("{" + name + "}", path)
        web.write_text(text.replace("{HASH}", hashed).replace("{PASSWORD}", PASSWORD).replace("{folder}", str(pki.folder))
                       .replace("{{", "{").replace("}}", "}"))  # fmt: skip
    result = _start_refused(web)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    assert lines[0].startswith(f"error: --web-config {web}: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and hashed not in result.stderr and hashed[7:29] not in result.stderr
    assert PASSWORD not in result.stderr and result.stdout == ""


def test_the_options_need_each_other(tmp_path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
    env = clean_env(PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "loomctl", "lag", "collect"]
    alone = subprocess.run([*base, "--web-config", str(web)], capture_output=True, text=True, env=env, timeout=60)
    assert alone.returncode == 2 and alone.stderr.strip() == "error: --web-config needs --listen"
    open_only = subprocess.run([*base, "--listen", "127.0.0.1:0", "--web-open-health"], capture_output=True, text=True, env=env, timeout=60)
    assert open_only.returncode == 2 and open_only.stderr.strip() == "error: --web-open-health needs --web-config"
    nothing_closed = _start_refused(web, "--web-open-health")
    assert nothing_closed.returncode == 2 and "has no basic_auth_users" in nothing_closed.stderr


# -- a collector behind its web configuration -----------------------------------------------------------------------


@dataclass
class Client:
    """The real curl, as one client: a CA to trust, a client certificate, basic auth credentials."""

    ca: str
    cert: tuple[str, str] | None = None
    auth: tuple[str, str] | None = None

    def args(self) -> list[str]:
        args = ["--cacert", self.ca]
        if self.cert:
            args += ["--cert", self.cert[0], "--key", self.cert[1]]
        if self.auth:
            args += ["--user", f"{self.auth[0]}:{self.auth[1]}"]
        return args

    def curl(self, url: str, *extra: str) -> tuple[int | None, str, str]:
        """(HTTP status or None when no answer came, the head and body, curl's error)."""
        result = subprocess.run(["curl", "-sS", "-i", "--max-time", "20", *self.args(), *extra, url],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        if result.returncode != 0 or not result.stdout.startswith("HTTP/"):
            return None, result.stdout, result.stderr.strip()
        return int(result.stdout.split()[1]), result.stdout, ""

    def status(self, url: str, *extra: str) -> int | None:
        return self.curl(url, *extra)[0]


@dataclass
class SecuredCollector:
    process: subprocess.Popen
    url: str
    address: str
    log: Path
    web: Path

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=30) == 0, self.log.read_text()
        text = self.log.read_text()
        assert "Traceback" not in text, text
        return text


def start_secured(database_url: str, bootstrap: str, folder: Path, web_text: str, ready: Client, *extra: str) -> SecuredCollector:
    """`loomctl lag collect --listen ... --web-config FILE` as a process; back once ``ready`` sees /readyz 200."""
    folder.mkdir(parents=True, exist_ok=True)
    web, log = folder / "web.yml", folder / "collector.log"
    _write(web, web_text)
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "loomctl", "--database-url", database_url, "--bootstrap-servers", bootstrap,
            "lag", "collect", "--interval", "1s", "--listen", address, "--web-config", str(web), *extra]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("w"), env=clean_env(), cwd=ROOT)
    running = SecuredCollector(process, f"https://{address}", address, log, web)
    try:
        def up() -> bool:
            assert process.poll() is None, log.read_text()
            return ready.status(f"{running.url}/readyz") == 200

        wait_for("the secured collector's first cycle", up)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return running


def _mtls_file(pki: Pki, hashed: str) -> str:
    return textwrap.dedent(f"""\
        tls_server_config:
          cert_file: {pki['server.crt']}
          key_file: {pki['server.key']}
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: {pki['ca.crt']}
          client_allowed_sans: [spiffe://loom/prometheus, other.test]
          min_version: TLS13
        http_server_config:
          headers:
            X-Content-Type-Options: nosniff
            X-Frame-Options: deny
            Strict-Transport-Security: max-age=31536000
        basic_auth_users:
          {USER}: '{hashed}'
          someone: '{_hash("other password", 4)}'
        """)


def _tls_file(pki: Pki, hashed: str, cert: str = "server.crt") -> str:
    # relative paths: read from the file's folder, as the format says
    return textwrap.dedent(f"""\
        tls_server_config:
          cert_file: {os.path.relpath(pki[cert], pki.folder / 'tls')}
          key_file: {os.path.relpath(pki['server.key'], pki.folder / 'tls')}
          cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
        http_server_config:
          http2: false
        basic_auth_users:
          {USER}: '{hashed}'
        """)


@pytest.fixture(scope="module")
def mtls_collector(served_db, services, known_groups, pki) -> Iterator[SecuredCollector]:
    """Client certificates (RequireAndVerifyClientCert, allowed SANs), TLS 1.3 only, basic auth, headers, open health."""
    ready = Client(pki["ca.crt"], (pki["client-ok.crt"], pki["client-ok.key"]), (USER, PASSWORD))
    running = start_secured(served_db, services.bootstrap_servers, pki.folder / "mtls", _mtls_file(pki, _hash(PASSWORD)), ready,
                            "--cluster-name", "pipeline-eu", "--web-open-health")  # fmt: skip
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def tls_collector(twin_db, services, pki) -> Iterator[SecuredCollector]:
    """TLS with a server certificate only, basic auth on every path (health too)."""
    ready = Client(pki["ca.crt"], None, (USER, PASSWORD))
    running = start_secured(twin_db, services.bootstrap_servers, pki.folder / "tls", _tls_file(pki, _hash(PASSWORD)), ready,
                            "--cluster-name", "pipeline-twin")  # fmt: skip
    try:
        yield running
    finally:
        running.stop()


def _headers(response: str) -> dict[str, str]:
    head = response.split("\r\n\r\n", 1)[0].splitlines()[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


@pytest.mark.integration
def test_the_refusal_matrix_with_client_certificates(mtls_collector, pki) -> None:
    url, ca = mtls_collector.url, pki["ca.crt"]
    good_cert = (pki["client-ok.crt"], pki["client-ok.key"])
    bad_cert = (pki["client-bad.crt"], pki["client-bad.key"])
    matrix: dict[str, Any] = {}
    matrix["right password"] = Client(ca, good_cert, (USER, PASSWORD)).curl(f"{url}/metrics")
    matrix["no credentials"] = Client(ca, good_cert).curl(f"{url}/metrics")
    matrix["wrong password"] = Client(ca, good_cert, (USER, "wrong")).curl(f"{url}/metrics")
    matrix["unknown user"] = Client(ca, good_cert, ("nobody", PASSWORD)).curl(f"{url}/metrics")
    matrix["other user's password"] = Client(ca, good_cert, ("someone", PASSWORD)).curl(f"{url}/metrics")
    matrix["no client certificate"] = Client(ca, None, (USER, PASSWORD)).curl(f"{url}/metrics")
    matrix["client certificate without an allowed SAN"] = Client(ca, bad_cert, (USER, PASSWORD)).curl(f"{url}/metrics")
    matrix["TLS 1.2 against min_version TLS13"] = Client(ca, good_cert, (USER, PASSWORD)).curl(f"{url}/metrics", "--tls-max", "1.2")
    matrix["plain HTTP on the TLS port"] = Client(ca).curl(f"http://{mtls_collector.address}/metrics")
    matrix["health open (--web-open-health)"] = Client(ca, good_cert).curl(f"{url}/healthz")
    matrix["burrow admin open"] = Client(ca, good_cert).curl(f"{url}/burrow/admin")
    matrix["health still needs the client certificate"] = Client(ca).curl(f"{url}/healthz")
    matrix["Burrow API without credentials"] = Client(ca, good_cert).curl(f"{url}/v3/kafka")
    matrix["POST without credentials"] = Client(ca, good_cert).curl(f"{url}/metrics", "-X", "POST")
    print(json.dumps({k: (v[0], v[2]) for k, v in matrix.items()}, indent=1))  # the matrix as run, with -s -v

    ok_status, ok_response, _ = matrix["right password"]
    assert ok_status == 200 and "loomctl_collector_up" in ok_response
    for case in ("no credentials", "wrong password", "unknown user", "other user's password", "Burrow API without credentials",
                 "POST without credentials"):  # fmt: skip
        status, response, _ = matrix[case]
        assert status == 401, (case, matrix[case])
        assert _headers(response)["www-authenticate"] == "Basic", case
        assert "loomctl_" not in response, case
    for case in ("no client certificate", "client certificate without an allowed SAN", "TLS 1.2 against min_version TLS13",
                 "health still needs the client certificate"):  # fmt: skip
        status, _, error = matrix[case]
        assert status is None and error.startswith("curl: ("), (case, matrix[case])
    assert "alert protocol version" in matrix["TLS 1.2 against min_version TLS13"][2]
    status, response, _ = matrix["plain HTTP on the TLS port"]
    assert status == 400 and "HTTPS endpoint" in response
    assert matrix["health open (--web-open-health)"][0] == 200 and matrix["burrow admin open"][0] == 200
    for case in ("right password", "no credentials", "health open (--web-open-health)"):  # the file's headers on every answer
        headers = _headers(matrix[case][1])
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "deny", case
        assert headers["strict-transport-security"] == "max-age=31536000", case


def _wait_closed(sock: socket.socket) -> None:
    """Read (a TLS alert, at most) until the server closes the connection; a timeout fails the test."""
    sock.settimeout(15)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass


@pytest.mark.integration
def test_a_slow_handshake_or_garbage_holds_no_other_client_and_prints_nothing(mtls_collector, pki) -> None:
    client = Client(pki["ca.crt"], (pki["client-ok.crt"], pki["client-ok.key"]), (USER, PASSWORD))
    host, port = mtls_collector.address.split(":")
    silent = [socket.create_connection((host, int(port)), timeout=30) for _ in range(3)]  # connects, says nothing
    trickle = socket.create_connection((host, int(port)), timeout=30)
    trickle.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and no more
    garbage = socket.create_connection((host, int(port)), timeout=30)
    garbage.sendall(b"\x16" + os.urandom(600))
    try:
        assert client.status(f"{mtls_collector.url}/metrics") == 200  # while they hold their connections
        for held in (garbage, *silent, trickle):  # each closed by the server (within HEAD_SECONDS of its accept)
            _wait_closed(held)
    finally:
        for s in (*silent, trickle, garbage):
            s.close()
    assert "Traceback" not in mtls_collector.log.read_text()


# -- a real Prometheus scrapes over TLS with basic auth, and with client certificates -------------------------------


@pytest.fixture(scope="module")
def prometheus(mtls_collector, tls_collector, pki, tmp_path_factory) -> Iterator[Any]:
    from test_prometheus import Prometheus, _tool

    binary = _tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus-tls")
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    config = folder / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: loomctl-tls
            scheme: https
            tls_config: {{ca_file: {pki['ca.crt']}}}
            basic_auth: {{username: {USER}, password_file: {password_file}}}
            static_configs: [{{targets: ["{tls_collector.address}"]}}]
          - job_name: loomctl-mtls
            scheme: https
            tls_config: {{ca_file: {pki['ca.crt']}, cert_file: {pki['client-ok.crt']}, key_file: {pki['client-ok.key']}}}
            basic_auth: {{username: {USER}, password_file: {password_file}}}
            static_configs: [{{targets: ["{mtls_collector.address}"]}}]
        """))
    address = f"127.0.0.1:{free_port()}"
    log = folder / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}",
         "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    server = Prometheus(address, process, log)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.integration
def test_prometheus_scrapes_over_tls_with_basic_auth_and_with_client_certificates(prometheus, known_groups) -> None:
    def both_up() -> list[dict[str, Any]] | None:
        assert prometheus.process.poll() is None, prometheus.log.read_text()
        try:
            up = prometheus.query("up")
        except OSError:
            return None
        return up if {r["metric"]["job"] for r in up if r["value"][1] == "1"} == {"loomctl-tls", "loomctl-mtls"} else None

    up = wait_for("Prometheus to scrape both collectors", both_up, timeout=60)
    targets = {t["labels"]["job"]: t for t in prometheus.api("targets")["activeTargets"]}
    print(json.dumps({job: (t["scrapeUrl"], t["health"], t["lastError"]) for job, t in targets.items()}))
    assert all(t["health"] == "up" and t["scrapeUrl"].startswith("https://") for t in targets.values()), targets
    assert len(up) == 2

    def series() -> list[dict[str, Any]]:
        rows = prometheus.query("loomctl_collector_up")
        return rows if {r["metric"]["job"] for r in rows} == {"loomctl-tls", "loomctl-mtls"} else []

    rows = wait_for("a loomctl series from each", series)
    assert {r["metric"]["cluster_name"] for r in rows} == {"pipeline-eu", "pipeline-twin"}
    lag = wait_for("the stopped group's lag", lambda: prometheus.query(f'kafka_consumergroup_group_sum_lag{{group="{known_groups.stop_group}"}}'))
    assert {r["metric"]["job"] for r in lag} <= {"loomctl-tls", "loomctl-mtls"} and float(lag[0]["value"][1]) == 30


# -- the file re-read while the collector runs ----------------------------------------------------------------------


@pytest.mark.integration
def test_health_needs_basic_auth_without_the_flag(tls_collector, pki) -> None:
    anonymous = Client(pki["ca.crt"])
    assert anonymous.status(f"{tls_collector.url}/healthz") == 401
    assert anonymous.status(f"{tls_collector.url}/burrow/admin/ready") == 401
    status, response, _ = Client(pki["ca.crt"], None, (USER, PASSWORD)).curl(f"{tls_collector.url}/readyz", "--tlsv1.2", "--tls-max", "1.2")
    assert status == 200 and "ready" in response  # TLS 1.2 with the file's cipher suite
    assert "http2 is ignored" in tls_collector.log.read_text()


def _served_serial(collector: SecuredCollector, pki: Pki) -> str:
    context = ssl.create_default_context(cafile=pki["ca.crt"])
    host, port = collector.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        return str(cert["serialNumber"])


@pytest.mark.integration
def test_a_changed_password_a_bad_change_and_a_rotated_certificate_are_taken_without_a_restart(tls_collector, pki) -> None:
    url = f"{tls_collector.url}/metrics"
    old, new = Client(pki["ca.crt"], None, (USER, PASSWORD)), Client(pki["ca.crt"], None, (USER, "rotated-password"))
    assert old.status(url) == 200 and new.status(url) == 401
    good = _tls_file(pki, _hash("rotated-password"))
    _write(tls_collector.web, good)
    wait_for("the new password", lambda: new.status(url) == 200, timeout=20)
    assert old.status(url) == 401
    assert "changed, now served" in tls_collector.log.read_text()

    warning = "still serving its last good configuration"
    _write(tls_collector.web, good.replace("basic_auth_users", "basic_auth_user"))
    wait_for("one warning", lambda: warning in tls_collector.log.read_text(), timeout=20)
    deadline = time.monotonic() + 3.5  # several looks at the file: the last good configuration goes on, unwarned again
    while time.monotonic() < deadline:
        assert new.status(url) == 200 and old.status(url) == 401
    text = tls_collector.log.read_text()
    lines = [line for line in text.splitlines() if warning in line]
    assert len(lines) == 1 and "unknown key 'basic_auth_user'" in lines[0], text
    assert "$2b$" not in text and "rotated-password" not in text

    before = _served_serial(tls_collector, pki)
    _issue(pki.folder, "server2", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth", key="server.key")
    _write(tls_collector.web, _tls_file(pki, _hash(PASSWORD), cert="server2.crt"))  # fixed: the old password, a new cert
    wait_for("the fixed file", lambda: old.status(url) == 200, timeout=20)
    assert new.status(url) == 401
    assert _served_serial(tls_collector, pki) != before
    later = pki.folder / "server2.crt"  # the same path, a new certificate in it: served without a change of the file
    served = _served_serial(tls_collector, pki)
    _issue(pki.folder, "server3", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth", key="server.key")
    os.replace(pki.folder / "server3.crt", later)
    wait_for("the rotated certificate", lambda: _served_serial(tls_collector, pki) != served, timeout=20)
    assert len([line for line in tls_collector.log.read_text().splitlines() if warning in line]) == 1
    assert old.status(url) == 200


# -- the core, in process -------------------------------------------------------------------------------------------


def test_inline_pems_load_and_relative_paths_read_from_the_files_folder(pki, tmp_path) -> None:
    from loomctl.lag.webconfig import WebConfig

    indent = "\n".join
    inline = tmp_path / "inline.yml"
    inline.write_text("tls_server_config:\n  cert: |\n" + indent("    " + line for line in Path(pki["server.crt"]).read_text().splitlines())
                      + "\n  key: |\n" + indent("    " + line for line in Path(pki["server.key"]).read_text().splitlines())
                      + "\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca: |\n"
                      + indent("    " + line for line in Path(pki["ca.crt"]).read_text().splitlines()) + "\n")  # fmt: skip
    web = WebConfig(inline)
    assert web.tls and web.settings.tls is not None and web.settings.tls.verify_mode == ssl.CERT_OPTIONAL
    relative = pki.folder / "relative.yml"
    relative.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    assert WebConfig(relative).tls


def test_sans_are_compared_as_written_by_the_format_and_credentials_read_as_rfc_7617() -> None:
    from loomctl.lag.webconfig import basic_credentials, certificate_sans

    cert = {"subjectAltName": (("DNS", "a.test"), ("IP Address", "2001:DB8:0:0:0:0:0:1\n"), ("IP Address", "10.0.0.1"),
                               ("email", "x@y.test"), ("URI", "spiffe://loom/p"), ("DirName", "ignored"))}  # fmt: skip
    assert certificate_sans(cert) == ["a.test", "2001:db8::1", "10.0.0.1", "x@y.test", "spiffe://loom/p"]
    assert certificate_sans(None) == []
    assert basic_credentials("Basic cHJvbTpzOmVjcmV0") == (b"prom", b"s:ecret")  # the password may hold a colon
    assert basic_credentials("basic cHJvbTpzZWNyZXQ=") == (b"prom", b"secret")
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic cHJvbQ==", "Basic"):
        assert basic_credentials(bad) is None, bad


def test_a_verified_password_is_remembered_and_an_unknown_user_costs_a_known_ones_time(tmp_path, monkeypatch) -> None:
    """Counted, not timed: which bcrypt checks each answer makes, and at what cost (the times are printed)."""
    import base64

    import bcrypt

    from loomctl.lag.webconfig import WebConfig

    checked: list[bytes] = []
    checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)

    web_file = tmp_path / "auth.yml"
    web_file.write_text(f"basic_auth_users:\n  {USER}: '{_hash(PASSWORD, 10)}'\n")
    events: list[tuple[str, str]] = []
    web = WebConfig(web_file, on_event=lambda level, message: events.append((level, message)))
    settings = web.current()

    def timed(user: str, password: str, times: int = 3) -> tuple[bool, float]:
        header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        spent, ok = [], False
        for _ in range(times):
            started = time.perf_counter()
            ok = web.authorized(settings, header)
            spent.append(time.perf_counter() - started)
        return ok, min(spent)  # the least: what the check costs, not what the machine's load adds

    first_ok, first = timed(USER, PASSWORD, 1)
    assert len(checked) == 1
    cached_ok, cached = timed(USER, PASSWORD, 200)
    assert len(checked) == 1  # remembered: no bcrypt again
    wrong_ok, wrong = timed(USER, "wrong")
    assert len(checked) == 4  # a wrong password pays bcrypt each time
    unknown_ok, unknown = timed("nobody", PASSWORD)
    assert len(checked) == 7 and checked[-1] not in settings.users.values()
    assert {h[:7] for h in checked} == {b"$2b$10$"}  # an unknown user is checked at a known one's cost
    long_ok, _ = timed(USER, PASSWORD + "x" * 80)
    print(f"bcrypt cost 10: first {first * 1000:.1f} ms, remembered {cached * 1000:.3f} ms, wrong {wrong * 1000:.1f} ms,"
          f" unknown user {unknown * 1000:.1f} ms")  # fmt: skip
    assert (first_ok, cached_ok, wrong_ok, unknown_ok, long_ok) == (True, True, False, False, False)
    assert events == []
