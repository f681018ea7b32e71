# ATTEST — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
CACHE_DIR ?= $(HOME)/.cache/attest
GOLANGCI_VERSION := v2.15.0
GOLANGCI := $(CACHE_DIR)/tools/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
FUZZTIME ?= 60s
BIN := bin/attest
LDFLAGS := -s -w

# Fuzz targets: package:Target, each run for FUZZTIME by `make fuzz`.
FUZZ_TARGETS := \
	./webhook:FuzzReadReview \
	./workload:FuzzExtract \
	./manifest:FuzzParse \
	./attestation:FuzzParseReference

.PHONY: all build test unit lint bench fuzz run clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/attest

## test: unit tests (with the race detector) and every Rego test of the library.
test: unit

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

$(GOLANGCI):
	GOBIN=$(dir $(GOLANGCI)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

## lint: go vet and golangci-lint (installed from the Go module proxy into $(CACHE_DIR)), depguard enforcing the layout.
lint: $(GOLANGCI)
	$(GO) vet ./...
	$(GOLANGCI) run ./...

## bench: admission and HTTPS benchmarks, then the CLI on generated manifests.
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./admission ./webhook
	./hack/bench-check.sh

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test $$pkg -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME); \
	done

## run: build and serve ATTEST on https://127.0.0.1:8443 with a self-signed certificate and the example config.
run: build
	./hack/run-local.sh

clean:
	rm -rf bin .run
