"""Bad database URLs and Kafka properties files: a clear one-line error, never a traceback, never a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Cli

from loomctl.errors import BadInput
from loomctl.settings import (
    Settings,
    check_database_url,
    libpq_url,
    mask_url,
    parse_properties,
    read_properties_file,
    redact,
    sqlalchemy_url,
)
from loomctl.settings.properties import exposed_secrets

SECRET = "Zq9s3cr3t"
"""A password no other part of any URL below contains."""


def refusal(url: str) -> str:
    with pytest.raises(BadInput) as caught:
        check_database_url(url)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    return message


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"postgresql://loom:{SECRET}@db:5432/loom", "postgresql://loom:***@db:5432/loom"),
        (f"postgresql://loom@h:1/loom?password={SECRET}", "postgresql://loom@h:1/loom?password=***"),
        (f"postgresql://loom@h:1/loom?sslmode=require&PassWord={SECRET}&x=1", "postgresql://loom@h:1/loom?sslmode=require&PassWord=***&x=***"),
        (f"postgresql://loom@h/loom?passwrod={SECRET}", "postgresql://loom@h/loom?passwrod=***"),
        (f"host=h passwrod={SECRET} dbname=loom", "host=h passwrod=*** dbname=loom"),
        (f"postgresql://loom@h/loom?sslpassword={SECRET}", "postgresql://loom@h/loom?sslpassword=***"),
        (f"postgresql://loom@h/loom?%70assword={SECRET}", "postgresql://loom@h/loom?%70assword=***"),
        (f"postgresql://loom:{SECRET}@h/loom?password={SECRET}", "postgresql://loom:***@h/loom?password=***"),
        (f"host=h port=1 password={SECRET} dbname=loom", "host=h port=1 password=*** dbname=loom"),
        (f"host=h password = '{SECRET} with spaces' dbname=loom", "host=h password = *** dbname=loom"),
        (f"host=h PASSWORD='it\\'s {SECRET}' user=u", "host=h PASSWORD=*** user=u"),
        (f"host=h password={SECRET} b=c user=u", "host=h password=*** *** user=u"),
        (f"host=h password={SECRET} rest of it", "host=h password=*** *** *** ***"),
        (f"password='{SECRET}", "password=***"),
        (f"postgresql://loom:{SECRET}@[::1/loom", "postgresql://loom:***@[::1/loom"),
        (f"mysql://loom:{SECRET}@h/loom", "mysql://loom:***@h/loom"),
        (f"http://loom:{SECRET}@h/loom", "http://loom:***@h/loom"),
        (f"postgresql://loom:pa?{SECRET}@h/loom", "postgresql://loom:***@h/loom"),
        (f"postgresql://loom:pa/{SECRET}@h/loom", "postgresql://loom:***@h/loom"),
        (f"postgresql://loom:p@{SECRET}@h/loom", "postgresql://loom:***@h/loom"),
        (f"loom:{SECRET}@h/loom", "loom:***@h/loom"),
        (f"postgresql://loom:{SECRET}@h/lo\nom", "postgresql://loom:***@h/lo\\x0aom"),
        ("postgresql://loom@h:5432/loom", "postgresql://loom@h:5432/loom"),
        ("postgresql://loom:s3cret@db.example:5432/loom", "postgresql://loom:***@db.example:5432/loom"),
        ("postgresql://loom@127.0.0.1/loom", "postgresql://loom@127.0.0.1/loom"),
        ("postgresql+psycopg://u:p@[::1]:5/x?sslmode=require", "postgresql+psycopg://u:***@[::1]:5/x?sslmode=require"),
        ("host=h dbname=loom", "host=h dbname=loom"),
        ("", ""),
    ],
)
def test_mask_url_masks_every_password(url, masked):
    assert mask_url(url) == masked
    assert SECRET not in mask_url(url)


def test_mask_url_never_raises():
    # not text: its str(), masked; odd text: as given, but for a password after ':' or 'password=' and control characters
    for odd, masked in (
        (None, "None"),
        (12, "12"),
        (b"postgresql://u:p@h", "b'postgresql:***@h'"),  # str() of bytes is no URL: everything from a colon to '@'
        ("\0", "\\x00"),
        ("://", "://"),
        ("postgresql://", "postgresql://"),
        ("@", "@"),
        (":@", ":***@"),
        ("'" * 50, "'" * 50),
        ("\\", "\\"),
        ("password=", "password=***"),
    ):
        assert mask_url(odd) == masked, odd


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_no_password_survives_masking_or_a_refusal(tail):
    password = SECRET + tail
    for url in (
        f"postgresql://loom:{password}@127.0.0.1:5432/loom",
        f"postgresql://loom@127.0.0.1:5432/loom?password={password}",
        f"host=127.0.0.1 password={password} dbname=loom",
        "host=127.0.0.1 password='" + password.replace("\\", "\\\\").replace("'", "\\'") + "' dbname=loom",
    ):
        assert SECRET not in mask_url(url)
        assert "\n" not in mask_url(url)
        try:
            checked = check_database_url(url)
        except BadInput as exc:
            assert SECRET not in str(exc) and "\n" not in str(exc)
        else:
            assert SECRET not in mask_url(checked)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"mysql://loom:{SECRET}@h/loom", "unsupported scheme mysql://"),
        (f"http://loom:{SECRET}@h/loom", "unsupported scheme http://"),
        (f"postgresql+psycopg2://loom:{SECRET}@h/loom", "unsupported scheme postgresql+psycopg2://"),
        ("sqlite:///loom.db", "unsupported scheme sqlite://"),
        (f"postgresql://loom:{SECRET}@[::1/loom", "[ without its ]"),
        (f"postgresql://loom:{SECRET}@::1/loom", "IPv6 host must be written in [ ]"),
        (f"postgresql://loom:{SECRET}@[zz]:5/loom", "not an IPv6 address"),
        (f"postgresql://loom:{SECRET}@h:99999/loom", "port must be a number from 1 to 65535"),
        (f"postgresql://loom:{SECRET}@h:0/loom", "port must be a number from 1 to 65535"),
        (f"postgresql://loom:{SECRET}@h:abc/loom", "port must be a number from 1 to 65535"),
        (f"postgresql://loom:{SECRET}@h:+1/loom", "port must be a number from 1 to 65535"),
        (f"postgresql://loom:{SECRET}@h/loom?port=70000", "port must be a number from 1 to 65535"),
        (f"postgresql://loom:{SECRET}@h1:1,h2:2/loom", "several hosts"),
        (f"postgresql://loom:pa?{SECRET}@h/loom", "percent-encoded"),
        (f"postgresql://loom:pa/{SECRET}@h/loom", "percent-encoded"),
        (f"postgresql://loom:p@{SECRET}@h/loom", "percent-encoded"),
        (f"postgresql://loom:{SECRET}@h/loom#x", "a # must be percent-encoded"),
        (f"postgresql://loom:{SECRET}%zz@h/loom", "two-digit hex escape"),
        (f"postgresql://loom:{SECRET}%00@h/loom", "%00"),
        (f"postgresql://loom:{SECRET}@h/loom?foo=bar", "unknown query parameter foo"),
        (f"postgresql://loom:{SECRET}@h/loom?sslmode", "sslmode has no value"),
        (f"postgresql://loom:{SECRET}@h/loom?host=", "host has no value"),
        (f"postgresql://loom:{SECRET}@h/lo\nom", "control character"),
        ("not a url", "not a URL"),
        ("localhost:5432/loom", "not a URL"),
        (f"loom:{SECRET}@h/loom", "not a URL"),
        ("x" * 10_000, "not a URL"),
        ("   ", "empty"),
        (f"host=h password={SECRET} with spaces", "expected key=value after password=..."),
        (f"host=h password={SECRET} b=c", "unknown keyword after password=..."),
        (f"host=h nosuch={SECRET}", "unknown keyword nosuch"),
        (f"host='h password={SECRET}", "no closing quote"),
        (f"={SECRET}", "a value without a key"),
        (f"host=h port=99999 password={SECRET}", "port must be a number from 1 to 65535"),
        (f"host=h1,h2 password={SECRET}", "several hosts"),
        (f"dbname='postgresql://u:{SECRET}@h/loom'", "itself a connection string"),
        (f"host=h password={SECRET}\0", "NUL"),
        (f"postgresql://loom:{SECRET}\udcff@h/loom", "not valid UTF-8"),
        (f"host=h password={SECRET}\udcff", "not valid UTF-8"),
    ],
)
def test_bad_urls_are_refused_with_the_reason_and_no_secret(url, reason):
    message = refusal(url)
    assert reason in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("postgresql://loom@h:5432/loom", "postgresql://loom@h:5432/loom"),
        ("postgres://loom@h/loom", "postgres://loom@h/loom"),
        ("postgresql+psycopg://loom@h/loom", "postgresql+psycopg://loom@h/loom"),
        ("POSTGRESQL://loom@h/loom", "postgresql://loom@h/loom"),
        ("  postgresql://loom@h/loom\n", "postgresql://loom@h/loom"),
        ("postgresql://u:p@[::1]:5/x?sslmode=require", "postgresql://u:p@[::1]:5/x?sslmode=require"),
        ("postgresql:///loom?host=/var/run/postgresql", "postgresql:///loom?host=/var/run/postgresql"),
        ("postgresql://", "postgresql://"),
        ("host=h port=5432 user=loom password=pw dbname=loom", "postgresql://loom:pw@h:5432/loom"),
        ("host=h user=loom password='a b\\'c' dbname='my db'", "postgresql://loom:a%20b%27c@h/my%20db"),
        ("host = ::1 port=5 dbname=loom sslmode=require", "postgresql://[::1]:5/loom?sslmode=require"),
        ("host=/tmp port=5433 dbname=loom", "postgresql:///loom?host=%2Ftmp&port=5433"),
        ("password=pw dbname=loom", "postgresql:///loom?password=pw"),
    ],
)
def test_good_urls_and_keyword_dsns(url, checked):
    assert check_database_url(url) == checked
    assert_sqlalchemy_and_libpq_agree(url)


def assert_sqlalchemy_and_libpq_agree(url: str) -> None:
    """What SQLAlchemy hands psycopg is what psycopg makes of the URL itself: one server, user and password."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(url))
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)
    through_sqlalchemy = conninfo_to_dict(make_conninfo("", **{k: str(v) for k, v in kwargs.items()}))
    assert through_sqlalchemy == conninfo_to_dict(libpq_url(url))


URLISH = st.text(alphabet="ahlo:@/?#%[]=&' \\1-.", max_size=24)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["postgresql://", "postgres://", "postgresql+psycopg://", "", "host="]), URLISH)
def test_any_text_is_refused_or_read_alike_by_sqlalchemy_and_libpq(prefix, rest):
    try:
        check_database_url(prefix + rest)
    except BadInput as exc:
        assert "\n" not in str(exc)
        return
    assert_sqlalchemy_and_libpq_agree(prefix + rest)


def test_a_keyword_dsn_reaches_sqlalchemy_and_psycopg_as_the_same_url():
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import make_url

    dsn = "host=db.example port=6543 user=loom password='p@ss w/rd' dbname=loom application_name=me"
    url = make_url(sqlalchemy_url(dsn))
    assert (url.host, url.port, url.username, url.password, url.database) == ("db.example", 6543, "loom", "p@ss w/rd", "loom")
    assert url.query == {"application_name": "me"}
    params = conninfo_to_dict(libpq_url(dsn))
    assert params == {"host": "db.example", "port": "6543", "user": "loom", "password": "p@ss w/rd", "dbname": "loom",
                      "application_name": "me"}
    assert Settings(database_url=dsn).require_database_url() == libpq_url(dsn)


def test_settings_check_the_url_where_it_is_used():
    assert Settings().checked_database_url() is None
    assert Settings(database_url="").checked_database_url() is None
    with pytest.raises(BadInput, match="unsupported scheme"):
        Settings(database_url=f"mysql://loom:{SECRET}@h/loom").require_database_url()
    with pytest.raises(BadInput, match="not a URL"):
        Settings(database_url="nonsense").checked_database_url()


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://loom:{SECRET}@127.0.0.1/loom",
        f"http://loom:{SECRET}@127.0.0.1/loom",
        f"postgresql://loom:{SECRET}@[::1/loom",
        f"postgresql://loom:{SECRET}@127.0.0.1:99999/loom",
        f"postgresql://loom:{SECRET}@127.0.0.1:port/loom",
        f"postgresql://loom@127.0.0.1/loom?nosuch={SECRET}",
        f"host=127.0.0.1 password={SECRET} and more",
        "just some words",
    ],
)
@pytest.mark.parametrize("command", [["db", "current"], ["db", "history"], ["db", "upgrade"], ["db", "check"], ["config", "list"]])
def test_the_cli_refuses_a_bad_url_with_exit_2_on_one_line(url, command):
    result = Cli(url)(*command)  # a traceback fails the test: the runner does not catch exceptions
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "database" in result.stderr
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://loom@127.0.0.1:1/loom?password={SECRET}",
        f"postgresql://loom@127.0.0.1:1/loom?sslpassword={SECRET}",
        f"postgresql://loom:{SECRET}@127.0.0.1:1/loom",
        f"host=127.0.0.1 port=1 user=loom password={SECRET} dbname=loom",
        f"host=127.0.0.1 port=1 user=loom password='{SECRET} x' dbname=loom",
    ],
)
def test_cannot_reach_postgresql_shows_no_password(url):
    for command in (["db", "current"], ["config", "list"]):
        result = Cli(url)(*command)
        assert result.exit_code == 5, result.output
        assert "cannot reach PostgreSQL at" in result.stderr and result.stderr.count("\n") == 1
        assert SECRET not in result.output


def write(tmp_path: Path, content: str | bytes, name: str = "client.properties") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("text", "props"),
    [
        ("a=1\nb = 2\nc:3\nd : 4\n", {"a": "1", "b": "2", "c": "3", "d": "4"}),
        ("   indented.key=v\n\t\fx=y", {"indented.key": "v", "x": "y"}),
        ("# comment\n! other\n  # indented comment\n\nk=v\n", {"k": "v"}),
        ("k=v with spaces  \n", {"k": "v with spaces"}),
        ("k=a=b:c\n", {"k": "a=b:c"}),
        ("k=\n", {"k": ""}),
        ("sasl.jaas.config=one \\\n    two \\\n  three\n", {"sasl.jaas.config": "one two three"}),
        ("k=v\\\\\nnext=1\n", {"k": "v\\", "next": "1"}),
        ("# a comment \\\nk=v\n", {"k": "v"}),
        ("k=first \\\n# not a comment\n", {"k": "first # not a comment"}),
        ("k=end\\", {"k": "end"}),
        ("a\\=b=c\n", {"a=b": "c"}),
        ("a\\:b:c\n", {"a:b": "c"}),
        ("a\\ b=c\n", {"a b": "c"}),
        ("k=\\u00e9t\\u00E9\n", {"k": "été"}),
        ("k=\\uD83D\\uDE00\n", {"k": "\U0001F600"}),
        ("k=tab\\there\\nnew\\rline\\fform\\q\n", {"k": "tab\there\nnew\rline\fform" + "q"}),
        ("k=trailing\\ \n", {"k": "trailing "}),
        ("k=1\r\nj=2\rl=3\n", {"k": "1", "j": "2", "l": "3"}),
        ("k=1\nk=2\n", {"k": "2"}),
        ("\ufeffk=v\n", {"k": "v"}),
        ("k=ünïcödé\n", {"k": "ünïcödé"}),
    ],
)
def test_properties_parse_as_java_does(tmp_path, text, props):
    assert read_properties_file(write(tmp_path, text)) == props
    assert parse_properties(text) == props


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"sasl.password {SECRET}\n", "client.properties:1: expected key=value"),
        (f"sasl.password\t{SECRET}\n", "client.properties:1: expected key=value"),
        (f"ok=1\n\n{SECRET}\n", "client.properties:3: expected key=value"),
        (f"security.protocol {SECRET}\n", "security.protocol without = or :"),
        (f"={SECRET}\n", "a value without a key"),
        (f"sasl.password={SECRET}\\u12\n", "malformed \\uXXXX escape in the value"),
        (f"ssl.key.password={SECRET}\\uZZZZ\n", "malformed \\uXXXX escape in the value"),
        (f"client.id={SECRET}\\uZZZZ\n", "malformed \\uXXXX escape in the value of client.id"),
        (f"sasl.password={SECRET}\\uD83D\n", "half of a surrogate pair"),
        (f"sasl.password={SECRET}\\u0000\n", "NUL"),
    ],
)
def test_bad_properties_lines_name_the_line_never_the_value(tmp_path, text, reason):
    with pytest.raises(BadInput) as caught:
        read_properties_file(write(tmp_path, text))
    message = str(caught.value)
    assert reason in message
    assert SECRET not in message and "\n" not in message
    assert "sasl.password" not in message and "ssl.key.password" not in message  # secret-bearing keys go unnamed


@pytest.mark.parametrize(
    "content",
    [
        b"sasl.password=" + SECRET.encode() + b"\x00\x01\x02",
        b"sasl.password=" + SECRET.encode() + b"\xff\xfe",
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n" + SECRET.encode(),
        ("sasl.password=" + SECRET + "\x1b[31m\n").encode(),
        ("sasl.password=" + SECRET).encode("latin-1") + b"\xe9\n",
    ],
)
def test_binary_or_non_utf8_properties_are_not_a_text_file(tmp_path, content):
    with pytest.raises(BadInput, match="is not a text file") as caught:
        read_properties_file(write(tmp_path, content))
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)


def test_unreadable_properties_files(tmp_path):
    with pytest.raises(BadInput, match="cannot read Kafka config file .*: not a regular file"):
        read_properties_file(Path("/dev/null"))
    with pytest.raises(BadInput, match="cannot read Kafka config file"):
        read_properties_file(tmp_path)
    with pytest.raises(BadInput, match="larger than 1 MiB"):
        read_properties_file(write(tmp_path, b"k=" + b"v" * (1 << 20)))
    fifo = tmp_path / "nobody-writes"
    os.mkfifo(fifo)
    assert read_properties_file(fifo) == {}  # at once, not waiting for a writer


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_properties_or_a_one_line_bad_input(content):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.properties"
        path.write_bytes(b"sasl.password=" + SECRET.encode() + content)
        try:
            props = read_properties_file(path)
        except BadInput as exc:
            assert SECRET not in str(exc) and "\n" not in str(exc)
        else:
            assert all(isinstance(k, str) and isinstance(v, str) and "\0" not in k + v for k, v in props.items())


def test_the_cli_refuses_a_binary_kafka_config_with_exit_2(tmp_path):
    path = write(tmp_path, b"\x7fELF\x02\x01\x01\x00" + SECRET.encode())
    result = Cli(bootstrap_servers="127.0.0.1:9")("--kafka-config", str(path), "lag", "show")
    assert result.exit_code == 2, result.output
    assert "not a text file" in result.stderr and result.stderr.count("\n") == 1
    assert SECRET not in result.output


def test_redact_masks_the_values_of_secret_properties():
    props = {"sasl.password": SECRET, "sasl.username": "loom", "client.id": "cli"}
    assert redact(f'Invalid value "{SECRET}" for "x" by loom from cli', props) == 'Invalid value "***" for "x" by *** from cli'


@pytest.mark.parametrize(
    ("mode", "who"), [(0o644, "every user"), (0o640, "its group"), (0o604, "every user"), (0o600, None), (0o400, None)]
)
def test_a_kafka_config_holding_secrets_that_others_may_read_gets_one_warning(tmp_path, mode, who):
    path = write(tmp_path, f"security.protocol=SASL_SSL\nsasl.password={SECRET}\n")
    path.chmod(mode)
    result = Cli(bootstrap_servers="127.0.0.1:9")("--kafka-config", str(path), "config", "fields", "-o", "json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    if who is None:
        assert warnings == []
    else:
        assert warnings == [
            f"warning: Kafka config file {path} holds secrets and {who} may read it (mode {mode:04o}): chmod 600 {path}"
        ]
    assert SECRET not in result.output and "sasl.password" not in result.stderr


def test_a_kafka_config_without_secrets_or_unreadable_gets_no_warning(tmp_path):
    plain = write(tmp_path, "security.protocol=SSL\nclient.id=loomctl\n", name="plain.properties")
    plain.chmod(0o644)
    broken = write(tmp_path, b"\xff\xfe" + SECRET.encode(), name="broken.properties")
    broken.chmod(0o644)
    assert exposed_secrets(plain) is None and exposed_secrets(broken) is None
    assert exposed_secrets(tmp_path / "missing.properties") is None and exposed_secrets(tmp_path) is None
