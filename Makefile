# A thin layer over CMake. `make test` is what CI runs.
BUILD     ?= build
SAN_BUILD ?= build-san
JOBS      ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE     ?= cmake
CTEST     ?= ctest
CPACK     ?= cpack

.PHONY: all deps build run test test-plain test-san bench bench-e2e install deb clean

all: build

deps:
	@.ci/install-deps

build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) -- --no-print-directory

# The relay in the foreground with conf/dev.ini: UDP 127.0.0.1:1235 and a
# unix socket in the build directory, forwarding to stdout.
run: build
	@sed 's#@BUILD@#$(CURDIR)/$(BUILD)#g' conf/dev.ini > $(BUILD)/dev.ini
	$(BUILD)/spectator-relay --config $(BUILD)/dev.ini

# Every test, then every test again under AddressSanitizer (with leak
# checks) and UndefinedBehaviorSanitizer.
test: test-plain test-san

test-plain: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-san: deps
	@$(CMAKE) -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRELAY_ASAN=ON -DRELAY_UBSAN=ON >/dev/null
	@$(CMAKE) --build $(SAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(CTEST) --test-dir $(SAN_BUILD) --output-on-failure -j $(JOBS)

# The core micro-benchmark. `build` also builds the end-to-end tools,
# bench/blast and bench/sink (see bench/README.md).
bench: build
	$(BUILD)/bench/bench_core

# Installs the build (systemd/install.cmake says what goes where): below
# /usr/local, or PREFIX; DESTDIR stages it elsewhere. An existing
# /etc/spectator-relay/relay.ini is kept.
install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# The Debian package, build/spectator-relay_VERSION-1_ARCH.deb, from the same
# install rules with the prefix /usr. docs/operations.md says how to use it.
deb: build
	cd $(BUILD) && $(CPACK) -G DEB

# The end-to-end matrix: blast -> sink and blast -> relay -> sink, one
# table, a few minutes. Never part of `make test`. Options for bench/e2e.py
# go in BENCH_E2E_ARGS, e.g. BENCH_E2E_ARGS="--only '20 lines udp' -v".
bench-e2e: build
	python3 bench/e2e.py --build $(BUILD) $(BENCH_E2E_ARGS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
