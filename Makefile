# The two README commands: `make demo` (one full cycle against the built-in simulator) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint check clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/pipeline run --once --simulate

test: $(STAMP) browser
	$(BIN)/pytest

# The browser tests (tests/web/test_browser.py) drive Debian's Chromium, and need a font that draws Hangul.
# Present: nothing happens. Missing: installed when root (CI), else one line says what to install.
BROWSER_PACKAGES := chromium fonts-noto-cjk

browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "make browser: installing $(BROWSER_PACKAGES) (Debian packages) for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); \
	else \
		echo "make browser: the browser tests need Debian's $(BROWSER_PACKAGES): sudo apt-get install -y --no-install-recommends $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests migrations
	$(BIN)/ruff format --check pipeline tests migrations
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
