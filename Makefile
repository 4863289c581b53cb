# Two commands: `make run` (the main job) and `make test` (the whole suite, headless).
# Each sets up its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-quick demo bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

# With no screen, run offscreen and save a screenshot (the command says where).
HEADLESS = $(if $(DISPLAY)$(WAYLAND_DISPLAY),,QT_QPA_PLATFORM=offscreen)

run: $(STAMP)
	$(HEADLESS) $(VENV)/bin/kerasqt example

demo: $(STAMP)
	$(HEADLESS) $(VENV)/bin/kerasqt demo

test: $(STAMP)
	$(PY) -m pytest

# The fast layer only (pure parts: no window, no Keras), in seconds; `make test` runs everything.
test-quick: $(STAMP)
	$(PY) -m pytest -m unit -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check kerasqt tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
