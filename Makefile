# irohds: the two set-up commands are `make demo` and `make test`.
# Both install their own dependencies (scripts/deps.sh) first.
VENV   := .venv
PY     := $(VENV)/bin/python
# The venv's tools first: meson-python must configure with the same meson
# that `meson test` later reads the build dir with.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
BUILD  := build/release
ASAN   := build/asan

.PHONY: all deps install test test-c test-py test-net test-net-asan test-asan test-interop test-interop-asan demo bench fuzz clean

all: install

deps:
	@scripts/deps.sh

# pip builds the C core, the daemon and the extension with meson-python and
# installs them into the venv (irohds-daemon lands in .venv/bin).  The build
# dir is kept, so a second `make` only recompiles what changed.
install: deps
	$(PY) -m pip install -q --no-build-isolation -Cbuild-dir=$(BUILD) .

test: install
	meson test -C $(BUILD) --print-errorlogs
	$(MAKE) --no-print-directory test-asan
	$(PY) -m pytest -q tests/python
	@# the flood tests ran against the ASan daemon just above (test-asan);
	@# `make test-net` runs them against this build too
	$(PY) -m pytest -q tests/net -m "not flood"

test-c: install
	meson test -C $(BUILD) --print-errorlogs

test-py: install
	$(PY) -m pytest -q tests/python

# Several hosts in network namespaces (tests/net/netlab.py); needs root.
test-net: install
	$(PY) -m pytest -q tests/net

# The multi-host tests (hostile peers included) against the daemon built with
# ASan + UBSan in build/asan; a sanitizer report in a daemon log fails the test.
# The small quarantine keeps ASan's own memory out of the flood test's RSS bound.
test-net-asan: install
	@test -f $(ASAN)/build.ninja || meson setup $(ASAN) -Dbuildtype=debug \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined
	ninja -C $(ASAN) src/daemon/irohds-daemon
	IROHDS_TEST_DAEMON=$(CURDIR)/$(ASAN)/src/daemon/irohds-daemon \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=16 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(PY) -m pytest -q tests/net

# The whole suite again with AddressSanitizer + UndefinedBehaviorSanitizer:
# C unit tests, then the Python tests against the sanitized extension and daemon.
test-asan: deps
	scripts/test-asan.sh

# irohds against a real iroh node (tests/interop/run.sh, docs/interop.md).
# Not part of `test`: the Rust oracle's first build takes a long while.
# CARGO_BUILD_JOBS defaults to the machine's cores; the oracle's Cargo.lock is
# used as committed (--locked).
test-interop: install
	@[ -f build/dev/build.ninja ] || meson setup build/dev
	ninja -C build/dev tests/interop/blobs_get
	cd tests/interop/iroh-oracle && cargo build --release --locked
	tests/interop/run.sh

# The same with the daemon and blobs_get built with ASan + UBSan (build/asan,
# as scripts/test-asan.sh configures it): iroh's traffic against our C code.
test-interop-asan: install
	@[ -f build/asan/build.ninja ] || meson setup build/asan -Dbuildtype=debug \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined
	ninja -C build/asan src/daemon/irohds-daemon tests/interop/blobs_get
	cd tests/interop/iroh-oracle && cargo build --release --locked
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	DAEMON=$(CURDIR)/build/asan/src/daemon/irohds-daemon \
	BLOBS_GET=$(CURDIR)/build/asan/tests/interop/blobs_get tests/interop/run.sh

demo: install
	scripts/demo.sh

bench: install
	scripts/bench.sh

fuzz: deps
	scripts/fuzz.sh

clean:
	rm -rf build
