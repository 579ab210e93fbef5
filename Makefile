# Two entry points: `make run` (set up, then the main job) and `make test` (set up, then every test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint browser setup clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,hf,nvml,web]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: rank rigs for Llama 2 70B at 4 bits on the built-in catalogue (no network).
run: $(STAMP)
	$(BIN)/rigplan plan llama-2-70b --quant 4bit

# Browser tests drive Debian's Chromium (never a downloaded browser). Installed when running
# as root (CI); elsewhere the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped"; }

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV)
