# The two commands of the README: `make run` and `make test`. Only Go is needed.
GO        ?= go
BIN       := bin
SOTA_LISTEN ?= 127.0.0.1:8080
SOTA_DATA   ?= ./data
export SOTA_LISTEN SOTA_DATA

.PHONY: build run test race lint bench fuzz soak clean web

# --version names the commit: the toolchain stamps it (-buildvcs), and the link flag covers builds
# from a git worktree, which the toolchain does not stamp.
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
GOBUILD := $(GO) build -buildvcs=auto -ldflags "-X sota/internal/version.Commit=$(COMMIT)"

build:
	$(GOBUILD) -o $(BIN)/sotad ./cmd/sotad
	$(GOBUILD) -o $(BIN)/sota ./cmd/sota

## run: start sotad with the example fleet on 127.0.0.1:8080, auth off for local use (SOTA_LISTEN, SOTA_DATA override)
run: build
	SOTA_AUTH=$${SOTA_AUTH:-none} SOTA_EXAMPLES=$${SOTA_EXAMPLES:-true} ./$(BIN)/sotad

## web: rebuild web/static/editor.js, the filter editor (CodeMirror 6), from web/editor/ with npm (the bundle is committed: build and run need only Go)
web:
	cd web/editor && npm ci --no-audit --no-fund && npm run build

## test: vet, formatting, and every test (race detector on the packages with goroutines), on the Badger
## store; then the suite again on PostgreSQL when SOTA_TEST_PG_URL is set or SOTA_REQUIRE_POSTGRES=1
## (each test in a fresh schema, see internal/storetest)
PG_PACKAGES := ./api/... ./engine/... ./resolver/... ./cmd/... ./auth/... ./signing/... ./policy/... ./client/... ./store/...
test: lint
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -race ./store/... ./api/... ./cmd/... ./engine/... ./policy/... ./client/...
	@if [ -n "$$SOTA_TEST_PG_URL" ] || [ "$$SOTA_REQUIRE_POSTGRES" = 1 ]; then \
		echo "== the suite on PostgreSQL ($${SOTA_TEST_PG_URL:-default URL of internal/storetest})"; \
		SOTA_TEST_STORE=postgres $(GO) test -count=1 -timeout 30m $(PG_PACKAGES); \
	else \
		echo "== PostgreSQL pass skipped: SOTA_TEST_PG_URL is not set (set it to a server's URL, as .ci/run does, to run the suite on PostgreSQL too)"; \
	fi

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: every performance budget of ARCHITECTURE.md, with baselines measured in the same run
## (one package at a time, so that no two benchmarks share the cores; prints one table: figure, budget, ratio against the baseline, pass/fail; rewrites README's Performance table)
## The PostgreSQL rows run when SOTA_TEST_PG_URL names a server (passed through to the benchmarks).
bench:
	$(GO) build -o $(BIN)/benchtable ./cmd/benchtable
	@if [ -n "$(SOTA_TEST_PG_URL)" ]; then echo "== PostgreSQL rows on $(SOTA_TEST_PG_URL)"; \
	else echo "== PostgreSQL rows skipped: SOTA_TEST_PG_URL is not set (make bench SOTA_TEST_PG_URL=postgres://... measures them)"; fi
	SOTA_TEST_PG_URL="$(SOTA_TEST_PG_URL)" $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 120m ./... 2>&1 | ./$(BIN)/benchtable -readme README.md

## fuzz: every fuzz target of the repository for FUZZTIME each (filter parser, JSON bodies of every POST/PUT route, policy validator)
FUZZTIME ?= 20s
fuzz:
	@set -e; for file in $$(find . -name '*_test.go' -not -path './.git/*' | xargs grep -l '^func Fuzz' | sort); do \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$(dirname $$file) $$fn ($(FUZZTIME))"; out=$$(mktemp); st=0; \
			$(GO) test $$(dirname $$file) -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) >$$out 2>&1 || st=$$?; cat $$out; \
			if [ $$st -ne 0 ] && grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
				echo "(a timed run ended with Go's spurious deadline error, golang/go#75804; no crasher)"; st=0; fi; \
			rm -f $$out; [ $$st -eq 0 ]; \
		done; \
	done

## soak: long model-based sessions, 50 kill -9 cycles of sotad, long device/resolve load, 10 minutes of churn (disk use stays flat)
soak:
	SOTA_MODEL_STEPS=$${SOTA_MODEL_STEPS:-3000} SOTA_MODEL_SESSIONS=$${SOTA_MODEL_SESSIONS:-6} $(GO) test -count=1 -timeout 60m -run '^TestModelRandomSessions$$' -v ./api
	SOTA_CRASH_CYCLES=$${SOTA_CRASH_CYCLES:-50} $(GO) test -count=1 -timeout 60m -run '^TestKillNineLosesNoAcknowledgedWrite$$' -v ./cmd/sotad
	SOTA_LOAD_SECONDS=$${SOTA_LOAD_SECONDS:-120} $(GO) test -count=1 -timeout 60m -run '^TestLoadDevicePollAndResolve$$' -v ./api
	SOTA_CHURN=$${SOTA_CHURN:-10m} $(GO) test -count=1 -timeout 60m -run '^TestChurnDiskFlat$$' -v ./cmd/sotad

clean:
	rm -rf $(BIN)
