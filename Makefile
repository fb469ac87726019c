# opsworker — the two commands that matter: `make run` and `make test`.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/opsworker/opsworker/internal/buildinfo.version=$(VERSION)
# Integration tests use DBs 10-14 of this Redis and flush them.
REDIS_ADDR ?= 127.0.0.1:6379
export REDIS_ADDR

.PHONY: all build run test test-deps lint demo fuzz bench chaos clean openapi image

all: lint test build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/worker ./cmd/worker
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/enqueue ./cmd/enqueue

## image: the container image (Dockerfile), tagged opsworker:$(VERSION),
## with the version and revision in its OCI labels and binaries.
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) -t opsworker:$(VERSION) .

## run: the worker on config/dev.yaml (embedded Redis, simulated providers).
run:
	$(GO) run ./cmd/worker --config config/dev.yaml

## test: the whole suite (unit, integration on $(REDIS_ADDR), end to end).
test:
	$(GO) vet ./...
	$(GO) test ./... -race -count=1 -p 2 -timeout 15m

## test-deps: what the tests need beyond Go and Redis: Debian's chromium
## (for the queue-UI browser test), Node.js with the npm packages pinned
## in tools/ts (openapi-typescript and tsc, for the OpenAPI TypeScript
## test) and in examples/webhook-node (the Standard Webhooks library of
## the Node.js webhook example), promtool from Debian's prometheus
## package (the alert rules) and kustomize $(KUSTOMIZE_VERSION) (the
## Kubernetes overlays; kubectl's built-in kustomize serves as well).
## These tests skip without them outside CI and fail without them in CI.
## Each is installed only when missing: running it again changes nothing.
# The newest kustomize that builds with the Go of go.mod (v5.8.3 needs go 1.27).
KUSTOMIZE_VERSION ?= v5.8.2
test-deps: tools/ts/node_modules/.package-lock.json examples/webhook-node/node_modules/.package-lock.json
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package)"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@command -v promtool >/dev/null 2>&1 || { \
		echo "installing promtool (Debian package prometheus)"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1 || { \
		GOBIN=$$($(GO) env GOBIN); [ -n "$$GOBIN" ] || GOBIN=$$($(GO) env GOPATH)/bin; \
		[ -x "$$GOBIN/kustomize" ] || { \
			echo "installing kustomize $(KUSTOMIZE_VERSION) into $$GOBIN"; \
			GOBIN="$$GOBIN" GOTOOLCHAIN=local GOFLAGS=-mod=mod $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); }; }

examples/webhook-node/node_modules/.package-lock.json: examples/webhook-node/package.json examples/webhook-node/package-lock.json tools/ts/node_modules/.package-lock.json
	cd examples/webhook-node && npm ci --no-audit --no-fund
	@touch $@

tools/ts/node_modules/.package-lock.json: tools/ts/package.json tools/ts/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "installing nodejs and npm (Debian packages)"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	cd tools/ts && npm ci --no-audit --no-fund
	@touch $@

## openapi: regenerate internal/api/openapi.json from the Go types (a
## test fails when the committed document differs).
openapi:
	$(GO) generate ./internal/api

## bench: one table: asynq's ceiling, a hand-written asynq flow and the
## pipeline (ops/s, Redis commands per operation), submit latency, idle
## latency and idle Redis load with the shipped intervals; then the
## growth table: 1,000 and 10,000 operations in flight (uses and flushes
## DB 15 of $(REDIS_ADDR); about 3 minutes). BENCHFLAGS="-growth-only -growth=1000,10000,100000"
## adds the 100,000 size; -trace prints one operation's Redis commands.
## Then filtered listing at 100,000 records (DB 9) and runbook overhead.
bench:
	$(GO) run ./cmd/opsbench -redis $(REDIS_ADDR) $(BENCHFLAGS)
	$(GO) test ./internal/opstore -run '^$$' -bench 'ListFiltered100k' -benchtime 1000x
	$(GO) test ./internal/runbook -run '^$$' -bench 'RunbookOverhead' -benchtime 20x

## chaos: the chaos suite at full size (300 operations per test): crash
## loop, Redis outage, provider brown-out, poison input. `make test` runs
## it in a short form (40).
CHAOS_OPS ?= 300
chaos:
	CHAOS_OPS=$(CHAOS_OPS) $(GO) test ./internal/e2e -run '^TestChaos' -count=1 -v -timeout 30m

## fuzz: each fuzz target for FUZZTIME (default 20s); a crash is saved
## under testdata/fuzz and becomes a regression test of `make test`.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzEnvelope$$' -fuzztime $(FUZZTIME) ./internal/tasks
	$(GO) test -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME) ./internal/tasks
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./webhookverify
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzProviderAnswers$$' -fuzztime $(FUZZTIME) ./internal/providers

## lint: gofmt and go vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## demo: with `make run` running, submit one operation of every kind (the
## kinds reference's examples) and show how each ended and where to look.
demo:
	$(GO) run ./cmd/enqueue demo

clean:
	rm -rf $(BIN)
