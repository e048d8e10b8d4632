# irohds: the two set-up commands are `make demo` and `make test`.
# Both install their own dependencies (scripts/deps.sh) first.
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build/release
ASAN   := build/asan

.PHONY: all deps install test test-c test-py test-asan demo bench fuzz clean

all: install

deps:
	@scripts/deps.sh

# pip builds the C core, the daemon and the extension with meson-python and
# installs them into the venv (irohds-daemon lands in .venv/bin).  The build
# dir is kept, so a second `make` only recompiles what changed.
install: deps
	$(PY) -m pip install -q --no-build-isolation -Cbuild-dir=$(BUILD) .

test: install
	$(VENV)/bin/meson test -C $(BUILD) --print-errorlogs
	$(MAKE) --no-print-directory test-asan
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q tests/python

test-c: install
	$(VENV)/bin/meson test -C $(BUILD) --print-errorlogs

test-py: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q tests/python

# The whole suite again with AddressSanitizer + UndefinedBehaviorSanitizer:
# C unit tests, then the Python tests against the sanitized extension and daemon.
test-asan: deps
	scripts/test-asan.sh

demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH scripts/demo.sh

bench: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH scripts/bench.sh

fuzz: deps
	scripts/fuzz.sh

clean:
	rm -rf build
