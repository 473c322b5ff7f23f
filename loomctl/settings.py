"""Where loomctl finds its backends: flags first, then LOOM_* environment variables.

The database URL is checked here, once, before anything connects with it, and every message
that shows it goes through :func:`mask_url`; the Kafka properties file is parsed here too, and
no error about it ever shows a value.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from loomctl.errors import BadInput

ENV_DATABASE_URL = "LOOM_DATABASE_URL"
ENV_BOOTSTRAP_SERVERS = "LOOM_KAFKA_BOOTSTRAP_SERVERS"
ENV_KAFKA_CONFIG = "LOOM_KAFKA_CONFIG"
ENV_ACTOR = "LOOM_ACTOR"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    bootstrap_servers: str | None = None
    kafka_config: Path | None = None
    actor: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from the environment, with non-None ``overrides`` (the CLI flags) winning."""
        values: dict[str, object] = {
            "database_url": os.environ.get(ENV_DATABASE_URL) or None,
            "bootstrap_servers": os.environ.get(ENV_BOOTSTRAP_SERVERS) or None,
            "kafka_config": Path(os.environ[ENV_KAFKA_CONFIG]) if os.environ.get(ENV_KAFKA_CONFIG) else None,
            "actor": os.environ.get(ENV_ACTOR) or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def require_database_url(self) -> str:
        """The checked database URL (a keyword DSN comes back as a URL); BadInput when unset or invalid."""
        url = self.checked_database_url()
        if url is None:
            raise BadInput(
                f"no database URL: pass --database-url or set {ENV_DATABASE_URL} "
                '(for the local stack: eval "$(loomctl dev env)")'
            )
        return url

    def checked_database_url(self) -> str | None:
        """Like :meth:`require_database_url`, but None when no URL is configured."""
        if not self.database_url or not self.database_url.strip():
            return None
        return check_database_url(self.database_url)

    def resolved_actor(self) -> str:
        if self.actor:
            return self.actor
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in some containers
            return "unknown"

    def kafka_properties(self) -> dict[str, str]:
        """librdkafka client properties: the properties file (SASL/SSL), then bootstrap servers."""
        props: dict[str, str] = {}
        if self.kafka_config is not None:
            props.update(read_properties_file(self.kafka_config))
        if self.bootstrap_servers:
            props["bootstrap.servers"] = self.bootstrap_servers
        if "bootstrap.servers" not in props:
            raise BadInput(
                f"no Kafka bootstrap servers: pass --bootstrap-servers or set {ENV_BOOTSTRAP_SERVERS} "
                f"(or bootstrap.servers in the {ENV_KAFKA_CONFIG} file)"
            )
        return props


SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
"""What libpq and SQLAlchemy (with psycopg 3, the one driver loomctl ships) both accept."""

SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"})
"""libpq connection parameters whose value is a secret."""

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]*)://")
_DSN_SPACE = " \t\n\v\f\r"  # C isspace(), what libpq's conninfo parser skips
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_FORM = "postgresql://user@host:port/dbname"


@functools.lru_cache(maxsize=64)
def check_database_url(url: str) -> str:
    """The URL to connect with, or BadInput saying why not (the URL masked, a DSN never shown).

    Takes ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` URLs and libpq keyword
    DSNs (``host=... dbname=...``), which come back as a URL, since SQLAlchemy takes no DSN.
    """
    text = url.strip()
    if not text:
        raise BadInput(f"the database URL is empty: expected {_URL_FORM}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, smuggled in by the environment or argv
        raise BadInput(f"the database URL is not valid UTF-8: expected {_URL_FORM}") from None
    if _SCHEME.match(text):
        return _check_url(text)
    if "=" in text:
        return _check_url(_dsn_to_url(text))
    raise BadInput(f"the database URL is not a URL: expected {_URL_FORM} or a libpq key=value DSN")


def _refuse(url: str, reason: str) -> BadInput:
    return BadInput(f"invalid database URL {mask_url(url)}: {reason}")


def _check_url(text: str) -> str:
    scheme_match = _SCHEME.match(text)
    assert scheme_match is not None
    scheme = scheme_match.group(1).lower()
    rest = text[scheme_match.end():]
    if _CONTROL.search(text):
        raise BadInput(f"invalid database URL: it contains a line break or another control character; expected {_URL_FORM}")
    if " " in text:  # libpq drops spaces that SQLAlchemy keeps
        raise _refuse(text, "a space must be percent-encoded (%20)")
    if scheme not in SCHEMES:
        shown = scheme if len(scheme) <= 32 else scheme[:32] + "..."
        raise _refuse(text, f"unsupported scheme {shown}:// (loomctl stores its data in PostgreSQL: {_URL_FORM})")
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    # libpq, SQLAlchemy and urllib disagree on where a password ends when it holds a raw @ / ? #:
    # refuse rather than connect with (or print) a different split than the user meant
    if authority.count("@") > 1 or "@" in tail:
        raise _refuse(text, "an @, /, ? or # in the user name, password or a parameter must be percent-encoded (%40, %2F, %3F, %23)")
    if "#" in tail:
        raise _refuse(text, "a # must be percent-encoded (%23)")
    if _BAD_PERCENT.search(text):
        raise _refuse(text, "a % must start a two-digit hex escape (write % itself as %25), and %00 is not allowed")
    _check_host_and_port(text, authority.rpartition("@")[2])
    query = tail.partition("?")[2]
    if query:
        _check_query(text, query)
    normalized = f"{scheme}://{rest}"
    _libpq_parses(text, normalized)
    return normalized


def _check_host_and_port(text: str, hostport: str) -> None:
    if "," in hostport:
        raise _refuse(text, "several hosts are not supported: give one host")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise _refuse(text, "the host has a [ without its ]")
        host, after = hostport[1:close], hostport[close + 1:]
        if not host or not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            raise _refuse(text, "the host in [ ] is not an IPv6 address")
        if after and not after.startswith(":"):
            raise _refuse(text, "after the ] of an IPv6 host only :port may follow")
        port = after[1:] if after else None
    else:
        if "]" in hostport:
            raise _refuse(text, "the host has a ] without its [")
        if hostport.count(":") > 1:
            raise _refuse(text, "an IPv6 host must be written in [ ], as in postgresql://user@[::1]:5432/dbname")
        if "%" in hostport:  # libpq decodes it, SQLAlchemy does not
            raise _refuse(text, "the host cannot be percent-encoded (give a socket folder as ?host=/path)")
        _, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    if port is not None:
        _check_port(text, port)


def _check_port(text: str, port: str) -> None:
    """A port given, empty included (SQLAlchemy takes ``host:`` for port 0 and fails)."""
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise _refuse(text, "the port must be a number from 1 to 65535")


def _check_query(text: str, query: str) -> None:
    keywords = _libpq_keywords()
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        name = unquote(key)
        shown = f" {name}" if _IDENTIFIER.fullmatch(name) else ""
        if not sep or not value:
            # libpq takes an empty value for "the default" even over the host or user before the
            # ?, SQLAlchemy drops it: one of them would connect elsewhere
            raise _refuse(text, f"the query parameter{shown} has no value")
        if name not in keywords:
            raise _refuse(text, f"unknown query parameter{shown} (libpq connection parameters only)")
        if name == "port":
            _check_port(text, unquote(value))
        if name in ("host", "hostaddr") and ("," in unquote(value) or ":" in unquote(value)):
            # SQLAlchemy reads host=a:1,b:2 as hosts and ports, libpq as names: they would disagree
            raise _refuse(text, f"a {name}= parameter must be one host without a port (an IPv6 host goes in [ ] after the @)")


def _libpq_parses(text: str, url: str) -> None:
    """libpq's own parser has the last word; its message is not shown, since it quotes the URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(libpq_form(url))
    except (psycopg.Error, ValueError):
        raise _refuse(text, "libpq cannot parse it") from None


@functools.lru_cache(maxsize=1)
def _libpq_keywords() -> frozenset[str]:
    import psycopg

    return frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults())


def _dsn_pairs(text: str) -> list[tuple[str, str]]:
    """A keyword DSN split as libpq's conninfo_parse() does; errors name keywords, never values."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)

    def after() -> str:
        return f" after {pairs[-1][0]}=..." if pairs else " at the start"

    while True:
        while i < n and text[i] in _DSN_SPACE:
            i += 1
        if i >= n:
            return pairs
        start = i
        while i < n and text[i] not in _DSN_SPACE and text[i] != "=":
            i += 1
        key = text[start:i]
        while i < n and text[i] in _DSN_SPACE:
            i += 1
        if i >= n or text[i] != "=":
            hint = " (quote a value that has spaces: key='a value')" if pairs else ""
            raise BadInput(f"invalid database DSN: expected key=value{after()}{hint}")
        if not key:
            raise BadInput(f"invalid database DSN: a value without a key{after()}")
        if key not in _libpq_keywords():
            # a word that follows a secret may be the rest of an unquoted secret: never shown then
            shown = f" {key}" if _IDENTIFIER.fullmatch(key) and not (pairs and pairs[-1][0] in SECRET_PARAMETERS) else ""
            raise BadInput(f"invalid database DSN: unknown keyword{shown}{after()} (libpq connection parameters only)")
        i += 1
        while i < n and text[i] in _DSN_SPACE:
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise BadInput(f"invalid database DSN: the quoted value of {key} has no closing quote")
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    value.append(text[i])
                    i += 1
        else:
            while i < n and text[i] not in _DSN_SPACE:
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                else:
                    value.append(text[i])
                    i += 1
        pairs.append((key, "".join(value)))


def _dsn_to_url(text: str) -> str:
    if "\0" in text:
        raise BadInput("invalid database DSN: it contains a NUL character")
    # a repeated keyword: the last one wins, as in libpq; an empty value means the default there
    params = {key: value for key, value in dict(_dsn_pairs(text)).items() if value}
    user, password = params.pop("user", None), params.pop("password", None)
    host, port, dbname = params.pop("host", None), params.pop("port", None), params.pop("dbname", None)
    if host and "," in host or port and "," in port:
        raise BadInput("invalid database DSN: several hosts are not supported: give one host")
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise BadInput("invalid database DSN: the port must be a number from 1 to 65535")
    if dbname and ("=" in dbname or "://" in dbname):
        raise BadInput("invalid database DSN: a dbname that is itself a connection string is not supported")
    netloc = ""
    if user is not None:
        netloc = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "") + "@"
    elif password is not None:
        params["password"] = password
    if host and re.fullmatch(r"[A-Za-z0-9.\-_]+", host):
        netloc += host
    elif host and re.fullmatch(r"[0-9A-Fa-f:.]+", host) and ":" in host:
        netloc += f"[{host}]"
    elif host and ":" in host:
        raise BadInput("invalid database DSN: the host is neither a host name, an IP address nor a socket folder")
    elif host:  # a Unix socket folder and the like: a query parameter, not part of the authority
        params = {"host": host, **params}
    if port and "host" in params:
        params = {**params, "port": port}
    elif port:
        netloc += f":{port}"
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    return f"postgresql://{netloc}/{quote(dbname or '', safe='')}" + (f"?{query}" if query else "")


def mask_url(url: object) -> str:
    """The URL (or keyword DSN) with every password replaced by ``***``, on one line, safe to print.

    Masks the password of the user info, the secret query parameters (``password=``,
    ``sslpassword=``, any case) and a DSN's ``password=`` (quoted or not); it never raises,
    and on text it cannot read it masks anything between ``user:`` and the last ``@``.
    """
    try:
        text = url if isinstance(url, str) else str(url)
        masked = _mask_url_form(text) if _SCHEME.match(text) else _mask_keyword_form(text)
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", masked)
    except Exception:  # a message must never fail (or leak) because of what was given as its URL
        return "***"


def _mask_userinfo(text: str, start: int) -> tuple[str, int]:
    """``text`` with what lies between the first ``:`` after ``start`` and the last ``@`` masked,
    and where the part after the user info begins."""
    at = text.rfind("@", start)
    if at < 0:
        return text, start
    colon = text.find(":", start, at)
    if colon < 0:
        return text, at + 1
    return text[: colon + 1] + "***" + text[at:], colon + 5


def _mask_url_form(text: str) -> str:
    scheme = _SCHEME.match(text)
    assert scheme is not None
    # The last @ ends the user info, whatever lies before it; for a URL that libpq and SQLAlchemy
    # accept it is the only @ (check_database_url refuses the others), for one they do not it
    # may mask more than the password, never less.
    text, after = _mask_userinfo(text, scheme.end())
    question = text.find("?", after)
    if question < 0:
        return text
    pairs = []
    for pair in text[question + 1:].split("&"):
        key, sep, _ = pair.partition("=")
        pairs.append(f"{key}=***" if sep and _secret_parameter(unquote(key)) else pair)
    return text[: question + 1] + "&".join(pairs)


def _secret_parameter(key: str) -> bool:
    """A secret's parameter, or one libpq does not know (``passwrod=``, a typo): its value may be one."""
    return key.strip().lower() in SECRET_PARAMETERS or key not in _known_keywords()


def _mask_keyword_form(text: str) -> str:
    if "=" not in text:
        return _mask_userinfo(text, 0)[0]  # not a DSN: perhaps a URL without its scheme
    out: list[str] = []
    i, n = 0, len(text)
    after_secret = False
    while i < n:
        if text[i] in _DSN_SPACE:
            out.append(text[i])
            i += 1
            continue
        start = i
        while i < n and text[i] not in _DSN_SPACE and text[i] != "=":
            i += 1
        key = text[start:i]
        j = i
        while j < n and text[j] in _DSN_SPACE:
            j += 1
        if j >= n or text[j] != "=":
            # a word without =: the rest of a secret that has spaces, if one came just before
            out.append("***" if after_secret else _mask_userinfo(key, 0)[0])
            continue
        j += 1
        while j < n and text[j] in _DSN_SPACE:
            j += 1
        end = j
        if end < n and text[end] == "'":
            end += 1
            while end < n and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
        else:
            while end < n and text[end] not in _DSN_SPACE:
                end += 2 if text[end] == "\\" else 1
            end = min(end, n)
        if after_secret and key not in _known_keywords():
            out.append("***")  # no keyword: the rest of the secret before it, e.g. password=a b=c
        else:
            after_secret = _secret_parameter(key)
            out.append(_mask_userinfo(key, 0)[0] + text[i:j] + ("***" if after_secret else text[j:end]))
        i = end
    return "".join(out)


def _known_keywords() -> frozenset[str]:
    try:
        return _libpq_keywords()
    except Exception:  # no libpq to ask which parameters are known: every value is masked
        return frozenset()


def sqlalchemy_url(url: str) -> str:
    """The checked URL as SQLAlchemy wants it for psycopg 3 (``postgresql+psycopg://``)."""
    checked = check_database_url(url)
    for prefix in ("postgresql://", "postgres://"):
        if checked.startswith(prefix):
            return "postgresql+psycopg://" + checked[len(prefix):]
    return checked


def libpq_url(url: str) -> str:
    """The inverse of :func:`sqlalchemy_url`: the checked URL as psycopg.connect() accepts it."""
    return libpq_form(check_database_url(url))


def libpq_form(url: str) -> str:
    prefix = "postgresql+psycopg://"
    return "postgresql://" + url[len(prefix):] if url.startswith(prefix) else url


PROPERTIES_MAX_BYTES = 1 << 20
_PROPERTY_SPACE = " \t\f"  # what java.util.Properties skips around keys and separators
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")
_SECRET_WORDS = ("sasl", "password", "secret", "token", "credential", "private", "pem", "jaas", "ssl.key", "keystore", "auth")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def is_secret_property(key: str) -> bool:
    """A property whose value may be a secret (SASL settings, passwords, keys): never shown."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact(text: str, props: dict[str, str]) -> str:
    """``text`` (a client library's message) with the value of every secret property of ``props`` masked."""
    for key, value in props.items():
        if value and is_secret_property(key):
            text = text.replace(value, "***")
    return text


def read_properties_file(path: Path) -> dict[str, str]:
    """Parse a librdkafka client properties file (UTF-8) as java.util.Properties.load does.

    Separators ``=`` or ``:``, ``#`` and ``!`` comments, backslash continuations and escapes
    (``\\uXXXX`` too). A key and a value separated by white space only are refused rather than
    guessed at. An error names the line, and its key only when that is not a secret's.
    """
    shown = _CONTROL.sub("?", str(path))
    try:
        # Non-blocking open: a named pipe nobody writes to reads as empty instead of waiting
        # forever; `--kafka-config <(vault ...)` still works, its writer is already there.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as file:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
                raise BadInput(f"cannot read Kafka config file {shown}: not a regular file")
            os.set_blocking(fd, True)
            data = file.read(PROPERTIES_MAX_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"cannot read Kafka config file {shown}: {exc.strerror or type(exc).__name__}") from None
    not_text = f"Kafka config file {shown} is not a text file: expected key=value lines (UTF-8)"
    if len(data) > PROPERTIES_MAX_BYTES:
        raise BadInput(f"Kafka config file {shown} is larger than {PROPERTIES_MAX_BYTES >> 20} MiB: not a client properties file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(not_text) from None
    if _TEXT_CONTROL.search(text):
        raise BadInput(not_text)
    return parse_properties(text, shown)


def parse_properties(text: str, where: str = "properties") -> dict[str, str]:
    """The key/value pairs of a ``.properties`` text; ``where`` starts each error message."""
    props: dict[str, str] = {}
    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].lstrip(_PROPERTY_SPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1]
            if i >= len(lines):
                break
            line += lines[i].lstrip(_PROPERTY_SPACE)
            i += 1
        key, value = _property(line, f"{where}:{number}")
        props[key] = value
    return props


def _continues(line: str) -> bool:
    """An odd number of trailing backslashes: the last one joins the next line."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _property(line: str, where: str) -> tuple[str, str]:
    key_end, escaped = 0, False
    while key_end < len(line):
        c = line[key_end]
        if not escaped and (c in "=:" or c in _PROPERTY_SPACE):
            break
        escaped = c == "\\" and not escaped
        key_end += 1
    raw_key = line[:key_end]
    rest = line[key_end:].lstrip(_PROPERTY_SPACE)
    named = _named(raw_key)
    if not rest or rest[0] not in "=:":
        got = f"{named} without = or :" if named else "no = or : after the key"
        raise BadInput(f"{where}: expected key=value, got {got} (separate the key and the value with = or :)")
    key = _unescape(raw_key, where, "key")
    if not key:
        raise BadInput(f"{where}: expected key=value, got a value without a key")
    value = _unescape(rest[1:].lstrip(_PROPERTY_SPACE), where, f"value of {named}" if named else "value")
    return key, value


def _named(raw_key: str) -> str:
    """The key as an error may show it: a property name that is no secret's, else nothing."""
    return raw_key if _PROPERTY_NAME.fullmatch(raw_key) and not is_secret_property(raw_key) else ""


def _unescape(raw: str, where: str, what: str) -> str:
    """Java's escapes, with the value's unescaped trailing white space dropped (Kafka trims values)."""
    out: list[str] = []
    keep = 0  # length of ``out`` up to its last character that is not unescaped trailing space
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            if c not in _PROPERTY_SPACE:
                keep = len(out)
            continue
        if i + 1 >= len(raw):
            break  # a lone backslash at the very end of the file
        e = raw[i + 1]
        if e == "u":
            digits = raw[i + 2 : i + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
                raise BadInput(f"{where}: malformed \\uXXXX escape in the {what}")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(e, e))
            i += 2
        keep = len(out)
    joined = "".join(out[:keep])
    try:  # \uD83D\uDE00: Java strings are UTF-16, so a pair of escapes is one character
        joined = joined.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise BadInput(f"{where}: a \\uXXXX escape in the {what} is half of a surrogate pair") from None
    if "\0" in joined:
        raise BadInput(f"{where}: a \\u0000 (NUL) in the {what}")
    return joined
