# The two commands a newcomer needs: `make demo` and `make test`.
GO ?= go
BIN := bin/drover

.PHONY: build demo test test-short bench fuzz lint

build:
	$(GO) build -o $(BIN) ./cmd/drover

# Starts a local cluster (server, SQLite store, web page, 2 agents) and runs
# examples/hello.yaml. Ctrl-C stops everything.
demo: build
	$(BIN) dev --demo --data .drover-dev

# Every test, with the race detector, as CI runs it.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

# The throughput benchmark of docs/performance.md.
bench: build
	$(BIN) bench --tasks 1000 --nodes 2

# Each fuzz target for a minute (-fuzzminimizetime keeps multi-KB archive
# inputs from stalling the run while Go shrinks them).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/jobspec/
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 60s -fuzzminimizetime 100x ./internal/archive/
