"""The Node package (node/): its lint, its own tests on this session's PostgreSQL and Kafka, and its parity with Python.

`npm ci` and `npm run build` run once per session; `npm run lint` (tsc --noEmit, ESLint) must pass. The
Node tests (node's test runner) get the session's addresses through LOOM_DATABASE_URL and
LOOM_KAFKA_BOOTSTRAP_SERVERS and the loomctl command through LOOMCTL; their spec output is printed,
and this test fails when any of them fails.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from typing import Any

import pytest
from support import Cli, clean_env, suffix, unique

from loomctl.configs.store import client_options
from loomctl.consumer_config import DEFAULTS, FIELDS, PROFILES

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "node"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: scripts/install-system-deps.sh installs Node.js and npm")
    return found


def _loomctl() -> str:
    beside = Path(sys.executable).parent / "loomctl"
    return str(beside) if beside.exists() else _tool("loomctl")


def _run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 300, input: str | None = None):
    return subprocess.run(command, check=False, cwd=NODE_DIR, env=env, input=input, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def node_package() -> str:
    """node/ installed from its lock file and built; the path of node."""
    npm, node = _tool("npm"), _tool("node")
    for step in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        result = _run(step)
        assert result.returncode == 0, f"{' '.join(step[1:])} failed:\n{result.stdout}\n{result.stderr}"
    return node


def test_node_lint_is_clean(node_package):
    """`npm run lint`: tsc --noEmit (strict) over src/ and test/, then ESLint with typescript-eslint's type-checked rules."""
    result = _run([_tool("npm"), "run", "lint"])
    assert result.returncode == 0, f"npm run lint failed:\n{result.stdout}\n{result.stderr}"


def _node_env(database_url: str, bootstrap_servers: str) -> dict[str, str]:
    return {**clean_env(), "LOOM_DATABASE_URL": database_url, "LOOM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "LOOMCTL": _loomctl(), "LOOM_CONFIG_CACHE_DIR": str(NODE_DIR / "dist-test" / "cache"),
            "KAFKAJS_NO_PARTITIONER_WARNING": "1"}


def test_node_tests_pass_on_the_session_stack(node_package, services, database_url):
    try:
        result = _run(
            [node_package, "--test", "--test-concurrency=1", "--test-reporter=spec", "dist-test/"],
            env=_node_env(database_url, services.bootstrap_servers), timeout=900,
        )
    except subprocess.TimeoutExpired as exc:
        partial = b"".join(o if isinstance(o, bytes) else o.encode() for o in (exc.stdout, exc.stderr) if o)
        pytest.fail(f"the Node tests did not finish within {exc.timeout:.0f} s:\n{partial.decode(errors='replace')}")
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, f"the Node tests failed:\n{output[-20000:]}"
    assert "ℹ fail 0" in output and "ℹ pass 0" not in output, output[-2000:]


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("node_fields", ROOT / "scripts" / "node-fields.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_field_table_is_not_stale():
    generated = _load_generator().render()
    committed = (NODE_DIR / "fields.json").read_text(encoding="utf-8")
    assert committed == generated, "node/fields.json is stale: run python scripts/node-fields.py and commit it"
    names = [f["name"] for f in json.loads(committed)["fields"]]
    assert names == [f.name for f in FIELDS]


def _settings_samples() -> list[dict[str, Any]]:
    """The defaults, each profile, and every field at each end of its range or at each choice."""
    samples = [dict(DEFAULTS)] + [p.full_settings() for p in PROFILES.values()]
    for f in FIELDS:
        values = f.choices or ((True, False) if f.kind is bool else (f.minimum, f.maximum))
        samples += [{**DEFAULTS, f.name: value} for value in values]
    return samples


_OPTIONS_SCRIPT = """
const { kafkajsOptions } = require('./dist');
const lines = require('fs').readFileSync(0, 'utf8').trim().split('\\n');
for (const line of lines) { const { group, settings } = JSON.parse(line); console.log(JSON.stringify(kafkajsOptions(group, settings))); }
"""


def test_node_kafkajs_options_equal_python_for_every_field_value(node_package):
    samples = _settings_samples()
    lines = "\n".join(json.dumps({"group": f"g{i}", "settings": s}) for i, s in enumerate(samples))
    result = _run([node_package, "-e", _OPTIONS_SCRIPT], input=lines)
    assert result.returncode == 0, result.stderr
    node = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(node) == len(samples)
    for i, (settings, options) in enumerate(zip(samples, node)):
        assert options == client_options("kafkajs", f"g{i}", settings), settings


_LOADER_SCRIPT = """
const { Pool } = require('pg');
const { ConsumerConfigLoader } = require('./dist');
(async () => {
  const pool = new Pool({ connectionString: process.env.LOOM_DATABASE_URL });
  const loader = new ConsumerConfigLoader(pool, { logger: { warn: (m) => console.error(m) } });
  const config = await loader.loadConfig(process.argv[1]);
  console.log(JSON.stringify({ source: config.source, options: config.kafkajs() }));
  await pool.end();
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""


def test_node_loader_equals_config_show_client_kafkajs(node_package, services, database_url, tmp_path):
    cli = Cli(database_url)
    service = unique("node-parity")
    created = cli("config", "set", service, "--create", "--group", unique("node-parity-group"), "max_poll_records=25",
                  "fetch_max_bytes=2000000", "isolation_level=read_uncommitted", "auto_offset_reset=earliest",
                  "partition_assignment_strategy=cooperative-sticky", "enable_auto_commit=false", "request_timeout_ms=61000")
    assert created.exit_code == 0, created.output
    shown = cli.json("config", "show", service, "--client", "kafkajs")
    env = {**_node_env(database_url, services.bootstrap_servers), "LOOM_CONFIG_CACHE_DIR": str(tmp_path)}
    result = _run([node_package, "-e", _LOADER_SCRIPT, service], env=env)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["source"] == "database"
    assert loaded["options"] == shown


_SERVICE_SCRIPT = """
const { Pool } = require('pg');
const { ConsumerConfigLoader } = require('./dist');
(async () => {
  const pool = new Pool({ connectionString: process.env.LOOM_DATABASE_URL });
  const warnings = [];
  const loader = new ConsumerConfigLoader(pool, { logger: { warn: (m) => warnings.push(m) } });
  const service = process.argv[1];
  const config = await loader.loadConfig(service);
  const id = await loader.recordProcessingMetrics(service, 10, 12.5);
  let recommendations;
  try { recommendations = (await loader.getProcessingRecommendations()).length; } catch (error) { recommendations = error.code; }
  let trail = 'read';
  try { await pool.query('SELECT * FROM consumer_config_changes'); } catch (error) { trail = error.code; }
  console.log(JSON.stringify({ source: config.source, id, recommendations, trail, warnings }));
  await pool.end();
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""


def test_node_loader_works_as_the_service_role_and_says_which_role_it_lacks(node_package, services, database_url, pg, tmp_path):
    """The Node loader as a login role granted loomctl_service: its config, its metrics and the recommendations, and
    no audit trail; as a role without it, the metrics are not recorded and the one warning names the role."""
    service = unique("node-role")
    assert Cli(database_url)("config", "set", service, "--create", "max_poll_records=25").exit_code == 0
    parts = urlsplit(database_url)
    users = {job: f"u_node_{job or 'none'}_{suffix(6).lower()}" for job in ("service", None)}
    try:
        outcomes = {}
        for job, user in users.items():
            pg.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD 'Node4Roles'")
            if job:
                assert Cli(database_url)("db", "grant", job, user, "--execute").exit_code == 0
            url = urlunsplit(parts._replace(netloc=f"{user}:Node4Roles@{parts.hostname}:{parts.port}"))
            env = {**_node_env(url, services.bootstrap_servers), "LOOM_CONFIG_CACHE_DIR": str(tmp_path / user)}
            result = _run([node_package, "-e", _SERVICE_SCRIPT, service], env=env)
            assert result.returncode == 0, result.stderr
            outcomes[job] = json.loads(result.stdout)
    finally:
        for user in users.values():
            pg.execute(f'DROP OWNED BY "{user}"')
            pg.execute(f'DROP ROLE IF EXISTS "{user}"')
    served = outcomes["service"]
    assert served["source"] == "database" and isinstance(served["id"], int) and served["trail"] == "42501"
    assert isinstance(served["recommendations"], int)
    assert served["warnings"] == []
    refused = outcomes[None]
    assert refused["source"] != "database" and refused["id"] is None and refused["trail"] == "42501"
    assert refused["recommendations"] == "42501"
    assert any("needs the role loomctl_service" in w and w.startswith("cannot record processing metrics") for w in refused["warnings"])


_RELOAD_SCRIPT = """
const { FIELDS, reloadClass } = require('./dist');
const protocols = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = {};
for (const protocol of protocols) {
  const settings = { ...require('./dist').DEFAULTS, group_protocol: protocol };
  out[protocol] = Object.fromEntries(['consumer_group_id', ...FIELDS.map((f) => f.name)].map((n) => [n, reloadClass(n, settings)]));
}
console.log(JSON.stringify(out));
"""


def test_node_reload_classes_equal_python_but_where_kafkajs_has_no_option(node_package):
    """How a running Node consumer follows each setting is Python's reload class for the group protocol, except a
    setting KafkaJS has no option for: a new KafkaJS client would change nothing, so it is unused there."""
    from loomctl.consumer_config import FIELDS_BY_NAME, GROUP_PROTOCOLS, reload_class

    result = _run([node_package, "-e", _RELOAD_SCRIPT], input=json.dumps(list(GROUP_PROTOCOLS)))
    assert result.returncode == 0, result.stderr
    node = json.loads(result.stdout)
    kafkajs = {f["name"]: f["kafkajs"] for f in json.loads((NODE_DIR / "fields.json").read_text(encoding="utf-8"))["fields"]}
    for protocol in GROUP_PROTOCOLS:
        settings = {**DEFAULTS, "group_protocol": protocol}
        for name in ["consumer_group_id", *FIELDS_BY_NAME]:
            expected = reload_class(name, settings)
            if expected == "recreate" and name not in ("consumer_group_id", "group_protocol") and kafkajs[name] is None:
                expected = "unused"
            assert node[protocol][name] == expected, (protocol, name)
