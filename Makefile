# Every target creates .venv (or $(VENV)) on first use and installs the package, its extras
# and the pinned development tools from constraints.txt. Nothing needs installing by hand.
#
#   make test                      lint, format check, mypy --strict, pytest with coverage
#   make test-browser              the demo page in headless Chromium (installs Debian's chromium)
#   make test-redis                fan-out through a real Redis, several server processes (installs redis-server)
#   make demo                      the reference demo
#   make bench                     the benchmarks (ratios against a baseline in the same run)
#   make bench-instructions        instructions per call and per echo under callgrind (needs valgrind)
#   make bench-redis               fan-out through Redis: latency, instructions per delivery
#   make autobahn                  Autobahn|Testsuite: each adapter vs its bare server
#   make dist                      the sdist and the wheel in dist/, checked by twine
#   make herd                      the reconnect herd simulation and its plot (docs/herd.png)
#   make fuzz SECONDS=600          the atheris fuzzers (corpus kept in fuzz/corpus/)
#   make load                      1,000 concurrent clients, half hostile, on both adapters
#   make test PYTHON=python3.12 VENV=.venv-3.12   another interpreter, its own venv

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: help install test test-browser test-redis bench-redis install-redis-server autobahn lint typecheck unit demo bench bench-instructions bench-quick dist herd fuzz load lock clean docs

help:
	@sed -n '1,15p' Makefile

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term
	@echo "core (sans-IO) coverage, at least 95%:"
	$(BIN)/coverage report --format=total --fail-under=95 --omit='*/adapters/*,*/_demo/*,*/cli.py,*/__main__.py'

test: lint typecheck unit

# The demo needs only the two adapters' servers, not the development tools: its own stamp.
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[websockets,starlette]' uvicorn
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/ws-close-policy demo --adapter websockets
	$(BIN)/ws-close-policy demo --adapter starlette

bench: $(STAMP)
	$(BIN)/python benchmarks/inbound.py
	$(BIN)/python benchmarks/outbound.py
	$(BIN)/python benchmarks/fanout.py
	$(BIN)/python benchmarks/e2e.py

bench-instructions: $(STAMP)
	$(BIN)/python benchmarks/instructions.py
	$(BIN)/python benchmarks/instructions_e2e.py

# A short version of every benchmark (a minute or two), for a quick look.
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/inbound.py --quick
	$(BIN)/python benchmarks/outbound.py --quick
	$(BIN)/python benchmarks/fanout.py --quick
	$(BIN)/python benchmarks/e2e.py --quick

# The demo page in real headless Chromium (tests/browser, marked `browser`): Debian's
# chromium package (apt-get, as root or through sudo) and Playwright for Python from
# constraints.txt, pointed at that browser; nothing is downloaded at test time. The page
# is also driven against `serve-demo --redis` (a fleet), hence Debian's redis-server. Screenshots
# of each state land in build/screenshots/.
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
test-browser: $(STAMP) install-redis-server
	@test -x /usr/lib/chromium/chromium || command -v chromium >/dev/null 2>&1 || \
		{ echo "installing Debian's chromium package"; \
		  DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q chromium >/dev/null || \
		  { $(APT_GET) update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q chromium >/dev/null; }; }
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev,browser]'
	$(BIN)/python -m pytest -m browser tests/browser

# Fan-out through Redis (tests marked `redis`): Debian's redis-server package (apt-get, as
# root or through sudo; the tests start their own servers on free ports) and redis-py from
# constraints.txt; several real server processes per test.
test-redis: $(STAMP) install-redis-server
	$(BIN)/python -m pytest -m "redis or not redis" tests/fanout tests/test_fanout.py \
		--cov --cov-config=tests/fanout/coverage.toml --cov-report=term

# Fan-out through Redis: latency and instructions per delivery against hand-written
# redis-py subscribers (needs valgrind too).
bench-redis: $(STAMP) install-redis-server
	$(BIN)/python benchmarks/fanout_redis.py

install-redis-server:
	@command -v redis-server >/dev/null 2>&1 || \
		{ echo "installing Debian's redis-server package"; \
		  DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q redis-server >/dev/null || \
		  { $(APT_GET) update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q redis-server >/dev/null; }; }

# Autobahn|Testsuite through every adapter next to its bare transport, on every server
# (a few minutes; wstest needs Python 2.7, found on PATH or under pyenv, or AUTOBAHN_PYTHON2).
# Fails when an adapter scores worse than its bare transport in a case stable across runs.
autobahn: $(STAMP)
	$(BIN)/python conformance/autobahn.py

# The sdist and the pure-Python wheel in dist/, then twine's metadata check.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The reconnect herd simulation, plotted to docs/herd.png (installs the `plot` extra).
herd: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[plot]'
	$(BIN)/python benchmarks/herd.py --plot

# The load test: 1,000 concurrent clients, half hostile, against serve-demo on both adapters.
load: $(STAMP)
	$(BIN)/python benchmarks/load.py --clients 1000

# Coverage-guided fuzzing (atheris): make fuzz SECONDS=600 [HARNESS=inbound]. New inputs
# land in fuzz/corpus/, which `make test` replays.
SECONDS ?= 60
HARNESSES ?= inbound session
fuzz: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[fuzz]'
	@for h in $(HARNESSES); do echo "== fuzz $$h for $(SECONDS) s"; $(BIN)/python fuzz/run.py $$h $(SECONDS) || exit 1; done

# Re-resolve the newest versions and pin them (run deliberately, then commit constraints.txt).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install $(PIP_FLAGS) -e '.[dev,plot,fuzz,browser]'
	echo '# Pinned development and CI versions (all Pythons 3.11-3.13). Regenerate with `make lock`.' > constraints.txt
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^ws-close-policy' >> constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf .venv .venv-* .mypy_cache .pytest_cache .ruff_cache .coverage .hypothesis build dist

docs: $(STAMP)
	$(BIN)/python -c "from ws_close_policy._report import close_codes_doc; print(close_codes_doc(), end='')" > docs/close-codes.md
	$(BIN)/python docs/apidoc.py > docs/api.md
