# regent — make demo runs the main job, make test runs every test.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
# The control-plane binaries are cached outside the checkout, keyed by version, so a fresh clone
# on the same machine reuses them. Override to keep them elsewhere, e.g. .cache/controlplane.
REGENT_CONTROLPLANE_CACHE ?= $(HOME)/.cache/regent/controlplane
export REGENT_CONTROLPLANE_CACHE

.PHONY: test unit e2e bench chaos lint controlplane node demo tidy kubectl-regent

## test: lint, unit tests and the end-to-end suite on a real control plane (the README's test command)
test: lint unit e2e

## demo: three replicas of examples/lease-leader as a Deployment on a node of the demo's own (where
## the node cannot start, it says why and runs them as processes on the embedded control plane; with
## $KUBECONFIG, as processes on that cluster): an election, a handover and a crash failover, in about
## a minute once built
demo: $(if $(KUBECONFIG),,controlplane)
	@$(if $(KUBECONFIG),true,tools/node/install.sh || echo "demo: the node's parts could not be installed (see above)")
	cd e2e && REGENT_CONTROLPLANE_BIN="$$($(if $(KUBECONFIG),true,../tools/controlplane/build.sh node || ../tools/controlplane/build.sh))" $(GO) run ./cmd/demo $(DEMO_FLAGS)

## unit: the fast unit tests, with the race detector
unit:
	$(GO) test -race -count=1 ./...
	cd integrations/regentctrl && $(GO) test -race -count=1 ./...
	cd cmd/kubectl-regent && $(GO) test -race -count=1 ./...

## e2e: the end-to-end suite against etcd, kube-apiserver and kube-controller-manager, and on a
## real node (e2e/onnode: the examples' manifests as Pods). Packages run one at a time: the chaos
## suite's timing checks and the node share two cores.
e2e: controlplane node
	cd e2e && REGENT_CONTROLPLANE_BIN="$$(../tools/controlplane/build.sh node)" $(GO) test -race -count=1 -p 1 -timeout 45m ./...

## bench: benchmarks on the real control plane, regent beside client-go in the same run; plots go
## to docs/images. Takes about 17 minutes (crash failovers wait out 15 s leases).
BENCH = cd e2e && REGENT_CONTROLPLANE_BIN="$$(../tools/controlplane/build.sh)" REGENT_BENCH_OUT=$(CURDIR)/docs/images \
	$(GO) test -run '^$$' -timeout 60m ./ -bench
bench: controlplane
	$(BENCH) 'LeaseHandover|ForLifeFailover$$' -benchtime 30x
	$(BENCH) 'ForLifeFailoverBecomeSchedule' -benchtime 8x
	$(BENCH) 'LeaseFailover' -benchtime 10x
	$(BENCH) 'LeaseRequestRate|LeaseScale' -benchtime 1x
	$(BENCH) 'LeaseCrowd' -benchtime 60x

## chaos: the long chaos run, faults injected at random into worker processes and the control plane,
## checked with an overlap checker and a fencing sink: at least 1,000 handovers per fleet, mostly
## graceful (about half an hour); plots go to docs/images. make test runs a short version.
CHAOS_FLAGS ?= -chaos.faults=1050 -chaos.weights=sigterm=40
chaos: controlplane
	cd e2e && REGENT_CONTROLPLANE_BIN="$$(../tools/controlplane/build.sh)" REGENT_BENCH_OUT=$(CURDIR)/docs/images \
		$(GO) test -run 'TestChaos$$' -count=1 -v -timeout 3h ./ -args $(CHAOS_FLAGS)

## lint: gofmt, go vet and staticcheck on every module
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	cd integrations/regentctrl && $(GO) vet ./...
	cd examples/configmap-operator && $(GO) vet ./...
	cd cmd/kubectl-regent && $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd e2e && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd integrations/regentctrl && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd cmd/kubectl-regent && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## controlplane: build etcd, kube-apiserver and kube-controller-manager when they are missing
controlplane:
	@tools/controlplane/build.sh >/dev/null

## node: build kube-scheduler and kubelet, and install containerd, runc and the CNI plugins
## (Debian's packages, as root) when they are missing
node: controlplane
	@tools/node/install.sh
	@tools/controlplane/build.sh node >/dev/null

## kubectl-regent: build the kubectl plugin into bin/ (put it on the PATH: kubectl regent list)
kubectl-regent:
	cd cmd/kubectl-regent && $(GO) build -o $(CURDIR)/bin/kubectl-regent .

tidy:
	$(GO) mod tidy
	cd e2e && $(GO) mod tidy
	cd tools/controlplane && $(GO) mod tidy
	cd integrations/regentctrl && $(GO) mod tidy
	cd examples/configmap-operator && $(GO) mod tidy
	cd cmd/kubectl-regent && $(GO) mod tidy
