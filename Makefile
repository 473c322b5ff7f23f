# loomctl: `make demo` to try it, `make test` to run the whole suite against real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install system-deps demo test bench clean

system-deps:
	@scripts/install-system-deps.sh

$(BIN)/loomctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: system-deps $(BIN)/loomctl

demo: install
	@scripts/demo.sh

# The session fixtures start a throwaway PostgreSQL and Kafka broker (or use LOOM_DATABASE_URL
# and LOOM_KAFKA_BOOTSTRAP_SERVERS when both are set) and stop them at the end.
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/views.py
	$(BIN)/python bench/lag_snapshot.py
	$(BIN)/python bench/scrape.py
	$(BIN)/python bench/apply.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache node/node_modules node/dist node/dist-test
