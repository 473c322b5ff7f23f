"""PostgreSQL URLs: checked once, before anything connects with one (libpq's URL and keyword forms, as libpq and
SQLAlchemy both read them), and masked wherever one is shown."""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote

from loomctl.errors import BadInput

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
    rest = text[scheme_match.end() :]
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
        raise _refuse(
            text, "an @, /, ? or # in the user name, password or a parameter must be percent-encoded (%40, %2F, %3F, %23)"
        )
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
        host, after = hostport[1:close], hostport[close + 1 :]
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
    for pair in text[question + 1 :].split("&"):
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
            return "postgresql+psycopg://" + checked[len(prefix) :]
    return checked


def libpq_url(url: str) -> str:
    """The inverse of :func:`sqlalchemy_url`: the checked URL as psycopg.connect() accepts it."""
    return libpq_form(check_database_url(url))


def libpq_form(url: str) -> str:
    prefix = "postgresql+psycopg://"
    return "postgresql://" + url[len(prefix) :] if url.startswith(prefix) else url
