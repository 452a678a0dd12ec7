# Turnout front end. `make run` builds and serves; `make test` installs what the tests
# need, builds, and runs every test (unit, integration, SDK end-to-end, sanitizers, fuzz).
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
JOBS        ?= $(shell nproc)
CONFIG      ?= examples/turnout.yaml

.PHONY: all deps deps-test build run test test-unit test-asan fuzz bench bench-fleet bench-admission clean

all: build

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh --test
	@cd tests && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || (cd tests && npm install --no-audit --no-fund --loglevel=error)

build: deps
	# Warnings are errors in CI (make test); a user's build should not stop on a new compiler's warning.
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_TESTS=OFF -DTURNOUT_BENCH=OFF -DTURNOUT_WERROR=OFF
	cmake --build $(BUILD) -j $(JOBS) --target turnout

run: build
	scripts/run.sh $(BUILD)/src/cli/turnout $(CONFIG)

test: deps-test
	scripts/test.sh

bench: deps-test
	@scripts/install-deps.sh --bench
	scripts/bench.sh

# Only the fleet part of `make bench` (1, 2 and 3 replicas behind HAProxy on one PostgreSQL).
bench-fleet: deps-test
	scripts/bench-fleet.sh

# Only the admission part of `make bench` (governance on/off, 4 replicas on one PostgreSQL).
bench-admission: deps-test
	scripts/bench-admission.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-test build-bench
