# A thin layer over CMake. `make test` is what CI runs.
BUILD     ?= build
SAN_BUILD ?= build-san
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JSON_SECONDS ?= 20
JOBS      ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE     ?= cmake
CTEST     ?= ctest
CPACK     ?= cpack

.PHONY: all deps build run test test-plain test-san test-systemd fuzz bench bench-e2e install deb clean

all: build

deps:
	@.ci/install-deps

build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAY_WERROR=ON >/dev/null
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
	@$(CMAKE) -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRELAY_ASAN=ON -DRELAY_UBSAN=ON -DRELAY_WERROR=ON >/dev/null
	@$(CMAKE) --build $(SAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(CTEST) --test-dir $(SAN_BUILD) --output-on-failure -j $(JOBS)

# The Debian package under a real systemd: tests/systemd/boot_test.py boots
# a Debian 12 root (built once with debootstrap and kept in
# /var/cache/spectator-relay-test) in systemd-nspawn, installs the package
# that `make deb` built, and checks it as a user would. Root only; a few
# minutes. docs/operations.md says more.
SYSTEMD_TEST_DEPS := debootstrap systemd-container

test-systemd: deb
	@.ci/install-deps $(SYSTEMD_TEST_DEPS)
	python3 tests/systemd/boot_test.py --build $(BUILD)

# The libFuzzer target of tests/fuzz/ for FUZZ_SECONDS, with clang, in its own
# build directory. It starts from seeds made from the vectors, the kept
# regressions and what earlier runs found ($(FUZZ_BUILD)/corpus). A crash
# fails the target and leaves its input in $(FUZZ_BUILD)/artifacts/: replay it
# with $(BUILD)/tests/fuzz/fuzz_replay FILE, fix it, and keep it in
# tests/fuzz/regressions/.
FUZZ_DEPS := clang libclang-rt-14-dev

fuzz:
	@.ci/install-deps $(FUZZ_DEPS)
	@CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAY_FUZZ=ON -DRELAY_WERROR=ON >/dev/null
	@$(CMAKE) --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_core fuzz_json fuzz_replay -- --no-print-directory
	@rm -rf $(FUZZ_BUILD)/seeds && mkdir -p $(FUZZ_BUILD)/seeds $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	@RELAY_VECTORS=$(CURDIR)/tests/data/protocol-vectors.tsv \
		$(FUZZ_BUILD)/tests/fuzz/fuzz_replay --write-seeds $(FUZZ_BUILD)/seeds
	$(FUZZ_BUILD)/tests/fuzz/fuzz_core -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
		-print_final_stats=1 -dict=tests/fuzz/fuzz_core.dict \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts/ \
		$(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seeds tests/fuzz/regressions
	@mkdir -p $(FUZZ_BUILD)/json-corpus
	$(FUZZ_BUILD)/tests/fuzz/fuzz_json -max_total_time=$(FUZZ_JSON_SECONDS) -timeout=30 \
		-print_final_stats=1 -dict=tests/fuzz/fuzz_json.dict \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts/json- \
		$(FUZZ_BUILD)/json-corpus tests/fuzz/json-seeds

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
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
