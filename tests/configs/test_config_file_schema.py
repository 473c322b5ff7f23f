"""`config import` treats a file as a schema: what is not in it is refused, with the path of the offending value,
in one line, exit 2, and nothing is written."""

from __future__ import annotations

import pytest

from support import Cli

pytestmark = pytest.mark.integration

GOOD = "services:\n  - service_name: {name}\n    settings: {{max_poll_records: 10}}\n"

BAD_FILES = {
    "not utf-8": (b"services:\n  - service_name: caf\xe9\n", "not UTF-8 text"),
    "a NUL byte": (b"services:\n  - service_name: a\x00b\n", "NUL"),
    "nested 2000 deep": (b"[" * 2000, "nested too deeply"),
    "a typo in the root key": (b"servics:\n  - service_name: a\n", "did you mean services?"),
    "an unknown root key": (b"services: []\nextra: 1\n", "unknown key 'extra'"),
    "a root that is a number": (b"42\n", "expected a list of services"),
    "a service that is a list": (b"services:\n  - [a, b]\n", "expected a mapping"),
    "a list as description": (b"services:\n  - {service_name: a, description: [1, 2]}\n", "description must be text"),
    "a list as group id": (b"services:\n  - {service_name: a, consumer_group_id: [a]}\n", "consumer_group_id must be text"),
    "a number as service name": (b"services:\n  - {service_name: 12}\n", "service_name must be text"),
    "a duplicate key": (b"services:\n  - service_name: a\n    service_name: b\n", "appears twice"),
    "a duplicate setting": (b"services:\n  - service_name: a\n    settings: {max_poll_records: 1, max_poll_records: 2}\n",
                            "appears twice"),
    "a list as a key": (b"services:\n  - {[a]: 1}\n", "a key must be text"),
    "settings as a list": (b"services:\n  - {service_name: a, settings: [1]}\n", "settings must be a mapping"),
    "a huge number": (b"services:\n  - {service_name: a, settings: {max_poll_records: " + b"9" * 5000 + b"}}\n",
                      "out of every range"),
    "a long number that int() takes": (b"services:\n  - {service_name: a, settings: {max_poll_records: " + b"9" * 60 + b"}}\n",
                                       "out of range"),
    "arabic digits": ("services:\n  - {service_name: a, settings: {max_poll_records: '١٢'}}\n".encode(), "not a whole number"),
    "a control character in the description": (b'services:\n  - {service_name: a, description: "x\\x01y"}\n',
                                              "control character"),
    "a profile that is a list": (b"services:\n  - {service_name: a, profile: [fast]}\n", "profile must be text"),
    "broken YAML": (b"services: [\n", "not YAML or JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_refused_in_one_line_and_changes_nothing(case, fresh_database_url, tmp_path):
    cli = Cli(fresh_database_url, group=["config"])
    assert cli("import", _write(tmp_path, GOOD.format(name="kept").encode()), "--yes").exit_code == 0
    before = cli.json("list")
    data, expected = BAD_FILES[case]
    result = cli("import", _write(tmp_path, data), "--yes")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    assert cli.json("list") == before


def test_a_directory_is_not_a_file_of_services(database_url, tmp_path):
    result = Cli(database_url, group=["config"])("import", str(tmp_path), "--yes")
    assert result.exit_code == 2 and result.stderr.startswith("error: cannot read") and result.stderr.count("\n") == 1


def _write(tmp_path, data: bytes) -> str:
    path = tmp_path / "services.yaml"
    path.write_bytes(data)
    return str(path)
