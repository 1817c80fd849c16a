# The README's commands. Everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := app

.PHONY: run test bench lint clean translations catalogues messages screenshots openapi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The .po files are committed; the compiled .mo files are built here, never committed.
catalogues: $(STAMP)
	$(BIN)/pybabel -q compile --directory translations

# Extraction, defined once: `make translations` and tests/test_translations.py both use it.
EXTRACT := $(BIN)/pybabel -q extract --sort-by-file --add-location file \
  --add-comments TRANSLATORS: --keywords _l --keywords lazy_gettext --keywords lazy_ngettext:1,2
POT ?= translations/messages.pot
CONSOLE_POT ?= translations/console.pot

messages: $(STAMP)
	$(EXTRACT) --mapping-file translations/babel.cfg --project "Forum Sign-up" --output-file $(POT) .
	$(EXTRACT) --mapping-file translations/console.cfg --project "Forum Sign-up console" \
	  --output-file $(CONSOLE_POT) .

# After changing any text people read: extract the messages, update the catalogues (then
# translate what is new in translations/ja/LC_MESSAGES/messages.po and run this again).
translations: messages
	$(BIN)/pybabel -q update --input-file $(POT) --output-dir translations \
	  --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date
	$(BIN)/pybabel compile --directory translations --statistics

# The API's OpenAPI document, committed at the root so that review sees every change to the API
# (tests/test_api_openapi.py compares it with the one the code writes). Run after changing /api.
openapi: $(STAMP)
	$(BIN)/flask openapi write openapi.json

run: catalogues
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: catalogues
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A PNG of every attendee page in both languages and of every console page at 1280 and 375 px,
# under screenshots/, from the browser tests' own data (needs Debian's chromium and fonts-noto-cjk).
screenshots: catalogues
	$(BIN)/python -m tests.screenshots

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info
