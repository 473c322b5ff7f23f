"""librdkafka properties files (Java's properties format): parsed strictly, and no error about one ever shows a
value; which properties are secrets, and masking them in a client's messages."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from loomctl.errors import BadInput

PROPERTIES_MAX_BYTES = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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


def exposed_secrets(path: Path) -> str | None:
    """Why the properties file at ``path`` gives its secrets away, as ssh says of a private key others may read: it
    holds a secret property (:func:`is_secret_property`: neither named nor shown, as in the parser's errors) and its
    mode lets its group or every user read it. None when it does not, or cannot be read here (the command that uses
    it says why)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(mode) or not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    try:
        secret = any(v and is_secret_property(k) for k, v in read_properties_file(path).items())
    except BadInput:
        return None
    if not secret:
        return None
    who = "every user" if mode & stat.S_IROTH else "its group"
    shown = _CONTROL.sub("?", str(path))
    return f"Kafka config file {shown} holds secrets and {who} may read it (mode {stat.S_IMODE(mode):04o}): chmod 600 {shown}"


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
