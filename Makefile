# The two commands of the README: `make run` and `make test`. Only Go is needed.
GO        ?= go
BIN       := bin
SOTA_LISTEN ?= :8080
SOTA_DATA   ?= ./data
export SOTA_LISTEN SOTA_DATA

.PHONY: build run test race lint bench fuzz soak clean

build:
	$(GO) build -o $(BIN)/sotad ./cmd/sotad
	$(GO) build -o $(BIN)/sota ./cmd/sota

## run: start sotad with the example fleet, auth off for local use (SOTA_LISTEN, SOTA_DATA override)
run: build
	SOTA_AUTH=$${SOTA_AUTH:-none} SOTA_EXAMPLES=$${SOTA_EXAMPLES:-true} ./$(BIN)/sotad

## test: vet, formatting, and every test (race detector on the packages with goroutines)
test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./store/... ./api/... ./cmd/... ./engine/... ./policy/... ./client/...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: every performance budget of ARCHITECTURE.md, with baselines measured in the same run
## (prints one table: figure, budget, ratio against the baseline, pass/fail; rewrites README's Performance table)
bench:
	$(GO) build -o $(BIN)/benchtable ./cmd/benchtable
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./... 2>&1 | ./$(BIN)/benchtable -readme README.md

clean:
	rm -rf $(BIN)
