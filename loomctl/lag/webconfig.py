"""`lag collect --web-config FILE`: TLS, client certificates, basic auth and response headers for the collector's
endpoint, in the web configuration file format Prometheus exporters take as ``--web.config.file``, with its meaning.

The file (YAML, parsed strictly: an unknown or repeated key is an error)::

    tls_server_config:
      cert_file: server.crt          # or cert: an inline PEM; paths are relative to the file's folder
      key_file: server.key           # or key: an inline PEM
      client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default), VerifyClientCertIfGiven
      client_ca_file: ca.crt         # or client_ca: an inline PEM
      client_allowed_sans: [prometheus.example]       # a DNS, IP, e-mail or URI SAN of the client's certificate
      min_version: TLS12             # TLS10..TLS13; default TLS12 (and max_version TLS13)
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # Go's names; TLS 1.2 and below
      prefer_server_cipher_suites: true
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}
      http2: true                    # accepted; the endpoint speaks HTTP/1.1 only
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt
    rate_limit: {interval: 1s, burst: 10}

What loomctl cannot do as the format means it is refused when the file is read, never ignored: ``client_auth_type``
RequestClientCert and RequireAnyClientCert (a client certificate asked for, or required, without being verified:
Python's TLS verifies every certificate it asks for), ``curve_preferences`` (Python's TLS cannot set a curve list), and
a cipher suite OpenSSL does not offer here. Where the format's reference implementation lets an odd file through, loomctl
says so instead: TLS settings without a certificate (served as plain HTTP there), ``cert`` beside ``cert_file`` (one
of them ignored there), ``client_allowed_sans`` without a client certificate asked for, ``min_version`` above
``max_version``, a burst of 0 (every request refused), a header value with a line break.

Basic auth: every request (every path: /metrics, the Burrow API and the health endpoints unless ``open_health``) must
carry a user of ``basic_auth_users`` and its password, else 401 with ``WWW-Authenticate: Basic``. A bcrypt check costs
tens to hundreds of milliseconds (about 80 ms at cost 10 here), so a password that verified is remembered per user as a
keyed digest of the user, its hash and the password, compared in constant time: a scrape every few seconds costs
bcrypt once. A wrong password pays bcrypt each time, and an unknown user pays for a hash of the same cost, so the time
of an answer does not tell whether a user exists. Checks run one at a time, so a flood of wrong passwords holds one
core, not all. No hash is ever shown: messages name the user, not what it maps to.

Reload: the file and the files it names are looked at (their size, time and inode) at most once a second, from the
requests themselves; a change is read then, so a rotated certificate or a changed password is taken without a restart,
for the next connection or request. A change that does not read is warned about once and the last good reading kept;
TLS cannot be turned on or off without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loomctl.errors import BadInput

CHECK_SECONDS = 1.0
"""The file and the files it names are looked at for a change at most this often."""

CLIENT_AUTH = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
"""Client certificates asked for (or required) without being verified: Python's ssl module has no way to do that."""

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
"""The suites the format names (Go's names of its secure suites) for TLS 1.2 and below, as OpenSSL names them."""
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
"""Accepted and, as in the format's reference, not configurable: TLS 1.3 always offers its own suites."""
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")

HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
"""The only response headers the format lets a file set (names as written), with the values allowed where it lists them."""

HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/burrow/admin", "/burrow/admin/ready"})
"""What ``open_health`` leaves without basic auth (a TLS handshake, and a client certificate if asked for, still apply)."""

_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_MAX_PASSWORD = 72
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

Event = Callable[[str, str], None]


def _silent(level: str, message: str) -> None:
    pass


class _Problem(Exception):
    """What is wrong with the file, as one line without any secret in it (the caller adds the file's name)."""


@dataclass(frozen=True)
class WebSettings:
    """One good reading of the file and of the files it names."""

    tls: ssl.SSLContext | None
    """None: plain HTTP."""
    allowed_sans: frozenset[str] | None
    """A client certificate must carry one of these SANs (None: no such check)."""
    headers: tuple[tuple[str, str], ...]
    users: Mapping[bytes, bytes]
    """User name to bcrypt hash (UTF-8); empty: no basic auth."""
    dummy_hash: bytes
    """What an unknown user's password is checked against, of the users' highest cost."""
    rate: tuple[float, int] | None
    """(seconds between requests, burst), or None: no limit."""
    http2: bool
    http2_set: bool = False


@dataclass
class _Reading:
    """What one look at the file gave: the settings or the problem, and the files it named, stat'ed before they were read."""

    settings: WebSettings | None
    problem: str | None
    signature: tuple[Any, ...]
    names: dict[str, str] = field(default_factory=dict)


def _stat(path: Path) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
    except OSError as exc:
        return (str(path), exc.errno)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _StrictLoader(yaml.SafeLoader):
    """YAML as the format's reference reads it strictly: a key given twice in one mapping is an error."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a key that is not a plain value", key_node.start_mark) from None
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML error's problem and where, without the snippet of the file PyYAML quotes (a line may hold a hash)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"not valid YAML: {exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return "not valid YAML"


def _section(value: Any, where: str, keys: Iterable[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Problem(f"{where} must be a mapping")
    known = tuple(keys)
    for key in value:
        if key not in known:
            raise _Problem(f"unknown key {key!r} in {where} (known: {', '.join(known)})")
    return value


def _string(section: dict[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Problem(f"{where}.{key} must be a string")
    return value


def _strings(section: dict[str, Any], key: str, where: str) -> list[str] | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Problem(f"{where}.{key} must be a list of strings")
    return value


def _bool(section: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = section.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _Problem(f"{where}.{key} must be true or false")
    return value


def _seconds(value: Any) -> float:
    """A Go duration (``1s``, ``1m30s``, ``250ms``) in seconds; 0 alone is 0."""
    if value == 0 and not isinstance(value, bool):
        return 0.0
    if not isinstance(value, str):
        raise _Problem("rate_limit.interval must be a duration such as 1s or 250ms")
    text = value.strip()
    if text == "0":
        return 0.0
    if not text:
        raise _Problem("rate_limit.interval is empty")
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise _Problem(f"rate_limit.interval {value!r} is not a duration such as 1s or 250ms")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total


def _pem_file(text: str, folder: str) -> str:
    """An inline PEM as a file of its own (``load_cert_chain`` reads files), readable by this user only; the caller
    removes the folder."""
    fd, name = tempfile.mkstemp(dir=folder, suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return name


def _ssl_reason(exc: Exception) -> str:
    """OpenSSL's reason (``PEM_LIB``, ``NO_START_LINE``) or the system's, without the file's contents."""
    return str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__)


def _tls_context(tls: dict[str, Any], folder: Path) -> tuple[ssl.SSLContext, frozenset[str] | None, dict[str, str]]:
    """The server's TLS context as the ``tls_server_config`` section means it, and the names of the files it read."""
    w = "tls_server_config"

    def path_of(key: str) -> str:
        text = _string(tls, key, w)
        return "" if not text else str(text if os.path.isabs(text) else folder / text)

    cert_file, key_file, ca_file = path_of("cert_file"), path_of("key_file"), path_of("client_ca_file")
    cert, key, ca = _string(tls, "cert", w), _string(tls, "key", w), _string(tls, "client_ca", w)
    for inline, named in (("cert", "cert_file"), ("key", "key_file"), ("client_ca", "client_ca_file")):
        if tls.get(inline) and tls.get(named):
            raise _Problem(f"{w}: give {inline} or {named}, not both")
    if not (cert_file or cert):
        raise _Problem(f"{w}: missing one of cert or cert_file")
    if not (key_file or key):
        raise _Problem(f"{w}: missing one of key or key_file")
    names = {k: v for k, v in (("cert_file", cert_file), ("key_file", key_file), ("client_ca_file", ca_file)) if v}

    auth = _string(tls, "client_auth_type", w)
    if auth in UNVERIFIED_CLIENT_AUTH:
        raise _Problem(
            f"{w}.client_auth_type {auth} is not supported by loomctl (Python's TLS verifies every client certificate it"
            " asks for): use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
        )
    if auth not in CLIENT_AUTH:
        raise _Problem(
            f"{w}.client_auth_type {auth!r} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
        )
    verify = CLIENT_AUTH[auth]
    if (ca_file or ca) and verify == ssl.CERT_NONE:
        raise _Problem(f"{w}: a client CA is configured without a client_auth_type that asks for client certificates")
    sans = _strings(tls, "client_allowed_sans", w)
    if sans is not None and verify == ssl.CERT_NONE:
        raise _Problem(f"{w}: client_allowed_sans needs a client_auth_type that asks for client certificates")

    versions = []
    for key_name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = _string(tls, key_name, w) or default
        if name not in TLS_VERSIONS:
            raise _Problem(f"{w}.{key_name} {name!r} is not one of {', '.join(TLS_VERSIONS)}")
        versions.append(name)
    if TLS_VERSIONS[versions[0]] > TLS_VERSIONS[versions[1]]:
        raise _Problem(f"{w}: min_version {versions[0]} is above max_version {versions[1]}")

    suites = _strings(tls, "cipher_suites", w) or []
    for name in suites:
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            raise _Problem(f"{w}.cipher_suites: unknown cipher {name!r} (Go's names of its secure suites)")
    openssl_suites = [CIPHER_SUITES[n] for n in suites if n in CIPHER_SUITES]
    if suites and not openssl_suites and TLS_VERSIONS[versions[0]] < ssl.TLSVersion.TLSv1_3:
        raise _Problem(
            f"{w}.cipher_suites names only TLS 1.3 suites, which are not configurable: name a TLS 1.2 one, or set min_version TLS13"
        )
    if _strings(tls, "curve_preferences", w):
        unknown = [c for c in tls["curve_preferences"] if c not in CURVES]
        if unknown:
            raise _Problem(f"{w}.curve_preferences: unknown curve {unknown[0]!r}")
        raise _Problem(f"{w}.curve_preferences is not supported by loomctl (Python's TLS cannot set a curve list); remove it")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version, context.maximum_version = TLS_VERSIONS[versions[0]], TLS_VERSIONS[versions[1]]
    if not _bool(tls, "prefer_server_cipher_suites", w, True):
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if openssl_suites:
        try:
            context.set_ciphers(":".join(openssl_suites))
        except ssl.SSLError:
            raise _Problem(f"{w}.cipher_suites: none of them is offered by this host's OpenSSL") from None
        offered = {c["name"] for c in context.get_ciphers()}
        missing = [n for n in suites if n in CIPHER_SUITES and CIPHER_SUITES[n] not in offered]
        if missing:
            raise _Problem(f"{w}.cipher_suites: {missing[0]} is not offered by this host's OpenSSL")
    with tempfile.TemporaryDirectory(prefix="loomctl-web-") as scratch:
        chain = cert_file or _pem_file(cert, scratch)
        private = key_file or _pem_file(key, scratch)
        for label, path in (("cert_file", cert_file), ("key_file", key_file)):
            if path and not os.path.isfile(path):
                raise _Problem(f"{w}.{label} {path}: no such file")
        try:
            context.load_cert_chain(chain, private, password=lambda: b"")  # an encrypted key fails, it never prompts
        except ssl.SSLError as exc:
            what = "cert_file and key_file" if cert_file and key_file else "the certificate and key"
            if "KEY_VALUES_MISMATCH" in str(exc) or getattr(exc, "reason", "") == "KEY_VALUES_MISMATCH":
                raise _Problem(f"{w}: {what} do not match (the key is not the certificate's)") from None
            raise _Problem(f"{w}: {what} do not load as a PEM certificate and its unencrypted key ({_ssl_reason(exc)})") from None
        except OSError as exc:
            raise _Problem(f"{w}: cannot read the certificate or key: {exc.strerror or exc}") from None
    if verify != ssl.CERT_NONE:
        context.verify_mode = verify
        try:
            if ca_file:
                context.load_verify_locations(cafile=ca_file)
            elif ca:
                context.load_verify_locations(cadata=ca)
            else:  # as the reference: no client CA configured, the system's roots
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError) as exc:
            where = f"client_ca_file {ca_file}" if ca_file else "client_ca"
            raise _Problem(f"{w}.{where}: not a PEM certificate that loads ({_ssl_reason(exc)})") from None
    context.set_alpn_protocols(["http/1.1"])  # the endpoint speaks HTTP/1.1 only (see http_server_config.http2)
    return context, None if sans is None else frozenset(sans), names


def _users(value: Any) -> tuple[dict[bytes, bytes], bytes]:
    if value is None:
        return {}, b""
    if not isinstance(value, dict):
        raise _Problem("basic_auth_users must be a mapping of user names to bcrypt hashes")
    users: dict[bytes, bytes] = {}
    costs = []
    for user, hashed in value.items():
        if not isinstance(user, str):
            raise _Problem("basic_auth_users: every user name must be a string")
        m = _BCRYPT.fullmatch(hashed) if isinstance(hashed, str) else None
        if m is None or not 4 <= int(m.group(1)) <= 31:
            raise _Problem(f"basic_auth_users: the hash of user {user!r} is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)")
        users[user.encode()] = hashed.encode()
        costs.append(int(m.group(1)))
    return users, _dummy_hash(max(costs)) if costs else b""


_dummies: dict[int, bytes] = {}


def _dummy_hash(cost: int) -> bytes:
    """A hash of a random password at ``cost``, made once per cost: what an unknown user's password is checked against."""
    import bcrypt

    if cost not in _dummies:
        _dummies[cost] = bcrypt.hashpw(os.urandom(18).hex().encode(), bcrypt.gensalt(rounds=cost))
    return _dummies[cost]


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    section = _section(value, "http_server_config.headers", HEADERS)
    headers = []
    for name, text in section.items():
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise _Problem(f"http_server_config.headers.{name} must be a string")
        allowed = HEADERS[name]
        if allowed and text not in allowed:
            raise _Problem(f"http_server_config.headers: {name} must be one of {', '.join(allowed)}, not {text!r}")
        if any(c in text for c in "\r\n\0"):
            raise _Problem(f"http_server_config.headers.{name}: a value on one line")
        if text:  # blank: not set
            headers.append((name, text))
    return tuple(headers)


def _rate(value: Any) -> tuple[float, int] | None:
    section = _section(value, "rate_limit", ("interval", "burst"))
    seconds = _seconds(section.get("interval", 0))
    burst = section.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise _Problem("rate_limit.burst must be a whole number, 0 or more")
    if seconds <= 0:
        return None
    if burst == 0:
        raise _Problem("rate_limit.burst 0 would refuse every request: give 1 or more, or interval 0 for no limit")
    return seconds, burst


def read_settings(path: Path) -> _Reading:
    """One look at the file: its settings, or the one-line problem with it."""
    names: dict[str, str] = {}
    signature: tuple[Any, ...] = (_stat(path),)
    try:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _Problem("no such file") from None
        except IsADirectoryError:
            raise _Problem("a directory, not a file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _Problem(f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            top = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise _Problem(_yaml_problem(exc)) from None
        except (ValueError, TypeError, RecursionError) as exc:  # a scalar its tag cannot make (a date like 2024-13-45)
            raise _Problem(f"not valid YAML: {type(exc).__name__}") from None
        top = _section(top, "the file", ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"))
        tls = _section(top.get("tls_server_config"), "tls_server_config", (
            "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file", "cipher_suites",
            "curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites", "client_allowed_sans"))  # fmt: skip
        http = _section(top.get("http_server_config"), "http_server_config", ("http2", "headers"))
        folder = path.resolve().parent
        for key in ("cert_file", "key_file", "client_ca_file"):
            value = tls.get(key)
            if isinstance(value, str) and value:
                names[key] = value if os.path.isabs(value) else str(folder / value)
        # the files named are looked at before they are read: a change while they are read is seen at the next look
        signature += tuple(_stat(Path(p)) for p in names.values())
        enabled = any(
            tls.get(k) for k in ("cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file")
        )
        if not enabled and any(tls.get(k) is not None for k in tls):
            raise _Problem(
                f"tls_server_config sets {', '.join(k for k in tls if tls.get(k) is not None)} without a certificate: TLS needs cert_file and key_file"
            )
        context, sans = None, None
        if enabled:
            context, sans, names = _tls_context(tls, folder)
        users, dummy = _users(top.get("basic_auth_users"))
        settings = WebSettings(
            tls=context,
            allowed_sans=sans,
            headers=_headers(http.get("headers")),
            users=users,
            dummy_hash=dummy,
            rate=_rate(top.get("rate_limit")),
            http2=_bool(http, "http2", "http_server_config", True),
            http2_set=http.get("http2") is not None,
        )
        return _Reading(settings, None, signature, names)
    except _Problem as exc:
        return _Reading(None, str(exc), signature, names)


def basic_credentials(authorization: str | None) -> tuple[bytes, bytes] | None:
    """The user and password of a ``Basic`` Authorization header (RFC 7617), or None when there is none that reads."""
    if not authorization or len(authorization) < 6 or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def certificate_sans(cert: Mapping[str, Any] | None) -> list[str]:
    """The DNS, e-mail, IP and URI SANs of a verified peer certificate (``SSLSocket.getpeercert()``), each written
    as the format's reference compares them (an IP address in its canonical text, an IPv4-mapped one as IPv4)."""
    found = []
    for kind, value in (cert or {}).get("subjectAltName", ()):
        if kind in ("DNS", "email", "URI"):
            found.append(value)
        elif kind == "IP Address":
            try:
                ip = ipaddress.ip_address(value.strip())
            except ValueError:
                continue
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.append(str(mapped or ip))
    return found


class _Bucket:
    """A token bucket: ``burst`` requests at once, then one every ``seconds``."""

    def __init__(self, seconds: float, burst: int) -> None:
        self.params = (seconds, burst)
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        seconds, burst = self.params
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(burst), self._tokens + (now - self._at) / seconds)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class WebConfig:
    """The file, read now (BadInput naming what is wrong with it) and again when it or a file it names changes
    (looked at by :meth:`current` at most every :data:`CHECK_SECONDS`). ``on_event(level, message)`` hears of each
    change: a warning, once, for one that does not read (the last good reading is kept), info for one taken."""

    def __init__(self, path: str | os.PathLike[str], *, open_health: bool = False, on_event: Event = _silent) -> None:
        self.path = Path(path)
        self.open_health = open_health
        self.on_event = on_event
        reading = read_settings(self.path)
        if reading.settings is None:
            raise BadInput(f"--web-config {self.path}: {reading.problem}")
        self._settings: WebSettings = reading.settings
        self._seen = reading.signature
        self._watched = [self.path, *map(Path, reading.names.values())]
        self._checked = time.monotonic()
        self._check_lock = threading.Lock()
        self._bucket = _Bucket(*reading.settings.rate) if reading.settings.rate else None
        self._bcrypt_lock = threading.Lock()
        self._digest_key = os.urandom(32)
        self._verified: dict[bytes, bytes] = {}
        """Per user, the keyed digest of (user, hash, password) of the last password that verified."""

    @property
    def tls(self) -> bool:
        """The endpoint speaks TLS (fixed at start: turning it on or off needs a restart)."""
        return self._settings.tls is not None

    @property
    def settings(self) -> WebSettings:
        return self._settings

    def current(self) -> WebSettings:
        """The settings to serve with, after a look at the files when the last one is :data:`CHECK_SECONDS` old (one
        thread looks; the others go on with what there is)."""
        now = time.monotonic()
        if now - self._checked >= CHECK_SECONDS and self._check_lock.acquire(blocking=False):
            try:
                if now - self._checked >= CHECK_SECONDS:
                    self._look()
                    self._checked = time.monotonic()
            finally:
                self._check_lock.release()
        return self._settings

    def _look(self) -> None:
        if tuple(_stat(p) for p in self._watched) == self._seen:
            return
        reading = read_settings(self.path)
        self._seen = reading.signature
        self._watched = [self.path, *map(Path, reading.names.values())]
        problem = reading.problem
        if reading.settings is not None and (reading.settings.tls is None) != (self._settings.tls is None):
            problem = f"TLS cannot be turned {'on' if self._settings.tls is None else 'off'} without a restart"
        if problem is not None or reading.settings is None:
            self.on_event("warning", f"--web-config {self.path}: {problem}; still serving its last good configuration")
            return
        fresh = reading.settings
        self._verified = {u: d for u, d in self._verified.items() if u in fresh.users}
        if fresh.rate is None:
            self._bucket = None
        elif self._bucket is None or self._bucket.params != fresh.rate:
            self._bucket = _Bucket(*fresh.rate)
        self._settings = fresh
        self.on_event("info", f"--web-config {self.path}: changed, now served")

    def allow(self) -> bool:
        """Within ``rate_limit`` (always, without one)."""
        bucket = self._bucket
        return bucket is None or bucket.allow()

    def needs_auth(self, settings: WebSettings, path: str) -> bool:
        return bool(settings.users) and not (self.open_health and path in HEALTH_PATHS)

    def authorized(self, settings: WebSettings, authorization: str | None) -> bool:
        """The request's Basic credentials name a user of ``settings`` and its password."""
        import bcrypt

        credentials = basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = settings.users.get(user)
        hashed = known if known is not None else settings.dummy_hash
        digest = hmac.new(
            self._digest_key, b"%d:%s%d:%s%s" % (len(user), user, len(hashed), hashed, password), hashlib.sha256
        ).digest()
        if hmac.compare_digest(self._verified.get(user, b"\0" * len(digest)), digest):
            return known is not None
        with self._bcrypt_lock:  # one check at a time: each holds a core for tens of milliseconds
            ok = bcrypt.checkpw(password[:_BCRYPT_MAX_PASSWORD], hashed)
        if ok and known is not None and len(password) <= _BCRYPT_MAX_PASSWORD:
            self._verified[user] = digest
            return True
        return False
