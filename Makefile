# ATTEST — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
CACHE_DIR ?= $(HOME)/.cache/attest
GOLANGCI_VERSION := v2.15.0
GOLANGCI := $(CACHE_DIR)/tools/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(CACHE_DIR)/tools/controller-gen-$(CONTROLLER_GEN_VERSION)/controller-gen
# Gatekeeper's gator, the peer `make bench` measures policy check against (outside the checkout).
GATOR_VERSION := v3.23.1
GATOR := $(CACHE_DIR)/tools/gator-$(GATOR_VERSION)/gator
# Helm, for `helm lint` of charts/attest and the chart tests in e2e (outside the checkout).
HELM_VERSION := v4.3.2
HELM := $(CACHE_DIR)/tools/helm-$(HELM_VERSION)/helm
FUZZTIME ?= 60s
# bin/attest is the lean CLI (`-tags lean`: no cluster client, registry verifier, webhook server or Gatekeeper
# library, so `policy check` starts fast and small); bin/attest-full is everything, which bin/attest runs for
# the commands that need it (serve, image, exempt, exemptions, verify, replay, check against registries).
BIN := bin/attest
FULL_BIN := bin/attest-full
# The e2e control plane: kube-apiserver, kube-controller-manager, etcd and kubectl built from k8s.io/kubernetes
# (e2e/controlplane/go.mod pins it), cached per version outside the checkout.
K8S_VERSION := v1.35.4
CONTROLPLANE := $(CACHE_DIR)/controlplane/$(K8S_VERSION)
LDFLAGS := -s -w

# Fuzz targets: package:Target, each run for FUZZTIME by `make fuzz`.
FUZZ_TARGETS := \
	./webhook:FuzzReadReview \
	./webhook:FuzzReviewKindAgreement \
	./webhook:FuzzOnePass \
	./admission:FuzzAppendJSONString \
	./workload:FuzzExtract \
	./manifest:FuzzParse \
	./manifest:FuzzMayHold \
	./attestation:FuzzParseReference \
	./exemptions:FuzzParseDuration \
	./exemptions:FuzzAnnotationExemption \
	./attestation:FuzzImageGlob \
	./attestation:FuzzRetryAfter \
	./policies:FuzzPlanMatchesTopdown \
	./policies/paramschema:FuzzCompile \
	./policies/paramschema:FuzzValidate \
	./policies/gatekeeper:FuzzParse \
	./policies/cedar:FuzzParse \
	./policies/cedar:FuzzCustomKinds \
	./bundles:FuzzRead \
	./workbench:FuzzReadLog \
	./cmd/attest:FuzzReviewInput

.PHONY: all build test unit chromium e2e controlplane lint dashboard-snapshot generate verify-generated bench audit-bench soak fuzz run run-webhook e2e-kind image clean gatekeeper-conformance

all: build

build:
	$(GO) build -tags lean -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/attest
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(FULL_BIN) ./cmd/attest

## test: unit tests (race detector), every Rego test of the library, and the e2e suite against a local control plane.
test: unit e2e

unit: chromium
	$(GO) vet ./...
	$(GO) vet -tags lean ./cmd/attest
	$(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 -tags lean ./cmd/attest

## chromium: Debian's Chromium, which the workbench's browser test drives (workbench/browser_test.go). Outside CI
## the test skips without it; in CI ($$CI set) it fails, so a machine without apt-get must provide it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "chromium: no apt-get here: install Chromium to run the workbench browser test (skipped without it, failed in CI)"; [ -z "$$CI" ]; \
	fi

## e2e: the e2e suite against etcd + kube-apiserver + kube-controller-manager on 127.0.0.1 (built once, cached).
e2e: build controlplane $(HELM)
	cd e2e && $(GO) vet ./...
	cd e2e && ATTEST_BIN=$(abspath $(BIN)) ATTEST_E2E_ASSETS=$(CONTROLPLANE) ATTEST_HELM=$(HELM) $(GO) test -count=1 -timeout 15m ./...

controlplane:
	./hack/build-controlplane.sh $(CONTROLPLANE) $(K8S_VERSION)

$(GOLANGCI):
	GOBIN=$(dir $(GOLANGCI)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

## lint: go vet, golangci-lint (installed from the Go module proxy into $(CACHE_DIR)) with depguard enforcing the
## layout, and a check that the generated CRDs and deep-copy code match api/.
lint: $(GOLANGCI) $(HELM) verify-generated
	$(GO) vet ./...
	$(HELM) lint --strict charts/attest
	$(HELM) lint --strict charts/attest --set certificates.mode=cert-manager --set monitoring.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=true --set monitoring.dashboard.enabled=true --set gatekeeper.watch=true
	$(GOLANGCI) run --allow-parallel-runners ./...
	$(GOLANGCI) run --allow-parallel-runners --build-tags lean ./cmd/attest/...

$(HELM):
	GOBIN=$(dir $(HELM)) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(GATOR):
	GOBIN=$(dir $(GATOR)) $(GO) install github.com/open-policy-agent/gatekeeper/v3/cmd/gator@$(GATOR_VERSION)

$(CONTROLLER_GEN):
	GOBIN=$(dir $(CONTROLLER_GEN)) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

## generate: deep-copy code and CRD YAML (manifests/crds) from api/v1alpha1.
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:maxDescLen=400 paths=./api/... output:crd:dir=manifests/crds
	cp manifests/crds/policy.attest.continuu.ms_*.yaml charts/attest/crds/
	cp manifests/overlays/gatekeeper/*-crd.yaml charts/attest/files/gatekeeper/

verify-generated: $(CONTROLLER_GEN)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(CONTROLLER_GEN) crd:maxDescLen=400 paths=./api/... output:crd:dir=$$tmp; \
	for f in $$tmp/*.yaml; do cmp -s $$f manifests/crds/$$(basename $$f) || { echo "manifests/crds/$$(basename $$f) is stale: run make generate"; exit 1; }; \
		cmp -s $$f charts/attest/crds/$$(basename $$f) || { echo "charts/attest/crds/$$(basename $$f) is stale: run make generate"; exit 1; }; done; \
	for f in manifests/overlays/gatekeeper/*-crd.yaml; do cmp -s $$f charts/attest/files/gatekeeper/$$(basename $$f) || { echo "charts/attest/files/gatekeeper/$$(basename $$f) differs from $$f: run make generate"; exit 1; }; done; \
	cp api/v1alpha1/zz_generated.deepcopy.go $$tmp/deepcopy.go; $(CONTROLLER_GEN) object paths=./api/...; \
	cmp -s api/v1alpha1/zz_generated.deepcopy.go $$tmp/deepcopy.go || { cp $$tmp/deepcopy.go api/v1alpha1/zz_generated.deepcopy.go; echo "api/v1alpha1/zz_generated.deepcopy.go is stale: run make generate"; exit 1; }

## bench: every figure of the performance targets in one run (about 6 minutes): the policy, admission and HTTPS
## benchmarks; attest policy check with two policies side by side with Gatekeeper's gator (CEL) on one object
## (start-up) and 1,000 / 10,000 / 100,000 objects in one stream, wall time and peak RSS (hack/bench-check.sh);
## the per-object cost of a Rego ConstraintTemplate in policy check against gator test (hack/bench-gatekeeper.sh);
## /validate with the whole library and the example config against a no-op handler over HTTPS, and attest
## serve's memory with BENCH_CACHE cached verifications (hack/loadgen); then the one-client latency again with each
## target in a process of its own and the client in another, as attest serve and the API server run, beside an
## attest serve process itself posted Deployments it has not seen (each request numbered).
BENCH_CACHE ?= 10000
bench: build $(GATOR)
	$(GO) test -run='^$$' -bench=. -benchmem ./policies ./admission ./webhook
	./hack/bench-check.sh $(BIN) $(GATOR)
	./hack/bench-gatekeeper.sh $(BIN) $(GATOR)
	$(GO) run ./hack/loadgen -cache $(BENCH_CACHE) -attest $(FULL_BIN)
	$(GO) run ./hack/loadgen -server process -client process -c 1 -rounds 10 -duration 1s -serve -attest $(FULL_BIN)

## audit-bench: the background audit of 10,000 Deployments on the local control plane without kube-controller-manager:
## wall time, peak RSS of attest serve and the API requests it issued (README "Background audit", about 2 minutes).
audit-bench: build controlplane
	cd e2e && $(GO) run ./cmd/audit-bench -assets $(CONTROLPLANE) -attest $(abspath $(FULL_BIN)) -repo ..

## soak: attest serve (the built binary, the whole library, examples/policies.yaml plus a trust section) takes 100,000
## admissions from 8 clients over HTTPS with a warm cache (0 errors; RSS and goroutines flat from 10,000 to 100,000),
## then its registry stalls (cached verdicts still served, other images denied within the budget naming the registry)
## and recovers (goroutines back to the baseline); a table of each checkpoint (hack/soak, about 2-4 minutes).
soak: build
	$(GO) run ./hack/soak -attest $(FULL_BIN)

## gatekeeper-conformance: Gatekeeper's own test suites through attest policy verify and, case by case, through
## attest policy check (hack/gkcheck). GATEKEEPER_LIBRARY is the library/ directory of a gatekeeper-library
## checkout outside this repository (its corpus is never copied in).
gatekeeper-conformance: build
	@test -d "$(GATEKEEPER_LIBRARY)" || { echo "set GATEKEEPER_LIBRARY to the library/ directory of a gatekeeper-library checkout"; exit 2; }
	$(BIN) policy verify $(abspath $(GATEKEEPER_LIBRARY))/...
	$(GO) run ./hack/gkcheck -attest $(BIN) $(abspath $(GATEKEEPER_LIBRARY))/...

## dashboard-snapshot: docs/dashboard.png, the Grafana dashboard drawn from a load run of attest serve (PromQL evaluated
## with Prometheus's engine over scraped /metrics, screenshot by headless Chromium; about 3 minutes).
dashboard-snapshot: build
	cd e2e && $(GO) run ./cmd/dashboard-snapshot -attest $(abspath $(FULL_BIN)) -repo .. -out ../docs/dashboard.png

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test $$pkg -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME); \
	done

## run: a local control plane with ATTEST registered and the example config; kubeconfig in .run/kubeconfig. Ctrl-C stops it.
run: build controlplane
	cd e2e && $(GO) run ./cmd/attest-cluster --assets $(CONTROLPLANE) --attest $(abspath $(BIN)) --repo $(CURDIR) \
		--config examples/policies.yaml --write-kubeconfig .run/kubeconfig

## run-webhook: only the webhook, on https://127.0.0.1:8443 with a self-signed certificate (no cluster).
run-webhook: build
	./hack/run-local.sh

## image: the container image (needs a Docker engine that can pull; not available on the development machines).
image:
	docker build -t attest:dev .

## e2e-kind: the same e2e suite against a kind cluster running the image (needs Docker and kind; untested here).
e2e-kind:
	./hack/e2e-kind.sh

clean:
	rm -rf bin .run
