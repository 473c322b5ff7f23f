# loomctl: `make demo` to try it, `make test` to run the whole suite against real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

LOCK := requirements.lock
UV_VERSION := 0.13.8

.PHONY: install system-deps demo test test-older-broker bench clean lock

system-deps:
	@scripts/install-system-deps.sh

# Every Python package comes from the lock, each file checked against its hash; loomctl itself is then installed
# without resolving anything (its build backend is in the lock too).
$(BIN)/loomctl: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@# the bytecode, as pip writes it for an installed wheel: an editable install leaves it to the first run, which
	@# never writes it where PYTHONDONTWRITEBYTECODE is set (every command then compiled 37 modules: 50 ms)
	$(BIN)/python -m compileall -q loomctl
	@touch $@

# Refresh the lock after a change of pyproject.toml's dependencies, or to take newer releases: every package of
# loomctl, its tests, its build backend and pip, resolved for Python 3.11+ on every platform, with the hashes of
# all their files (uv, in a throwaway environment). Commit the lock with the change; `make install` follows it.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q uv==$(UV_VERSION)
	printf 'hatchling>=1.21\neditables>=0.5\npip>=24\n' | .lock-venv/bin/uv pip compile pyproject.toml - --extra test \
		--generate-hashes --universal --python-version 3.11 --quiet --output-file $(LOCK) \
		--custom-compile-command 'make lock'
	rm -rf .lock-venv

install: system-deps $(BIN)/loomctl

demo: install
	@scripts/demo.sh

# The session fixtures start a throwaway PostgreSQL and Kafka broker (or use LOOM_DATABASE_URL
# and LOOM_KAFKA_BOOTSTRAP_SERVERS when both are set) and stop them at the end. The broker runs the
# Kafka release of loomctl/devstack/kafka-pom.xml, or LOOM_DEV_KAFKA_VERSION's.
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# The integration tests where Kafka releases differ, on the oldest release Maven Central serves here:
# lag against kafka-consumer-groups, what a cluster can do (`cluster check`), KIP-848 group configs
# (config push and drift), partitions apply, the collector, and `loomctl dev` itself. The session
# always starts its own broker of that release (LOOM_DEV_KAFKA_VERSION moves it, Kafka's tools and
# `dev up` together; the devstack fetches the jars once).
OLDER_KAFKA_VERSION ?= 4.0.1
OLDER_BROKER_TESTS := \
	tests/test_capabilities.py \
	tests/test_clusters_cli.py::test_check_asks_the_real_cluster_and_keeps_the_answer_while_an_unreachable_one_is_exit_5 \
	tests/lag/test_lag_agrees.py \
	tests/kafka/test_batched_offsets.py \
	tests/configs/test_consumer_protocol.py \
	tests/configs/test_session_timeout_bounds.py \
	tests/partitions/test_partitions_apply.py \
	tests/lag/test_collector.py \
	tests/lag/test_group_types.py::test_every_broker_release_lists_its_consumer_groups_and_a_group_type_it_lacks_is_said_once \
	tests/devstack/test_dev_cli.py \
	tests/devstack/test_kafka_versions.py::test_the_session_broker_runs_the_release_asked_for_with_its_logging_alive
test-older-broker: install
	env -u LOOM_DATABASE_URL -u LOOM_KAFKA_BOOTSTRAP_SERVERS LOOM_DEV_KAFKA_VERSION=$(OLDER_KAFKA_VERSION) \
		$(BIN)/pytest $(PYTEST_ARGS) $(OLDER_BROKER_TESTS)

bench: install
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/views.py
	$(BIN)/python bench/lag_snapshot.py
	$(BIN)/python bench/scrape.py
	$(BIN)/python bench/apply.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache node/node_modules node/dist node/dist-test
