# deskgate: `make demo` and `make test` each set themselves up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install chromium bench clean lock

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || { \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
		|| { echo "error: deskgate needs Python 3.11 or newer; found '$(PYTHON)'. Install python3.11, or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; exit 1; }; \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@echo "deriving MiniLM's token table for the injection screen (once, about 20 s; kept in ~/.cache/deskgate)"
	$(BIN)/python -c 'from deskgate.sanitize.model import shared_screen; shared_screen().vectors(["ready"])'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/deskgate demo

# The browser tests need Debian's Chromium: installed here when missing (scripts/ensure-chromium).
# Three workers (pytest-xdist), a test file per worker: most tests wait on real servers and
# processes, not on the CPU; a browser test file shares one desk between its tests.
test: chromium $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

chromium:
	@sh scripts/ensure-chromium

bench: $(STAMP)
	$(BIN)/python benchmarks/policy_throughput.py
	$(BIN)/python benchmarks/staging_latency.py

# Re-pin every transitive dependency after changing pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet -e ".[dev]"
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^deskgate' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache
