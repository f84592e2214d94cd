# The two commands of CONTRACT.md: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SWAGGER := node_modules/swagger-ui-dist
XTERM := node_modules/@xterm
PLAYER := node_modules/asciinema-player/dist/bundle

.PHONY: run test vendor clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Front-end libraries come from npm (package-lock.json) into the git-ignored static/vendor/.
static/vendor/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	rm -rf static/vendor && mkdir -p static/vendor/swagger-ui-dist static/vendor/xterm static/vendor/htmx \
	   static/vendor/asciinema-player
	cp $(SWAGGER)/swagger-ui-bundle.js $(SWAGGER)/swagger-ui-standalone-preset.js \
	   $(SWAGGER)/swagger-ui.css $(SWAGGER)/favicon-32x32.png static/vendor/swagger-ui-dist/
	cp $(XTERM)/xterm/lib/xterm.js $(XTERM)/xterm/css/xterm.css $(XTERM)/addon-fit/lib/addon-fit.js static/vendor/xterm/
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp $(PLAYER)/asciinema-player.min.js $(PLAYER)/asciinema-player.css static/vendor/asciinema-player/
	touch $@

vendor: static/vendor/.installed

run: $(VENV)/.installed vendor
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_admin
	exec bin/pam-run

test: $(VENV)/.installed-dev vendor
	$(PY) -m pytest

clean:
	rm -rf $(VENV) node_modules static/vendor
