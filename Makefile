# phiguard — build, generate, test and demo. Everything installs from the Go
# module proxy; nothing downloads a prebuilt binary.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

ROOT := $(abspath .)
BIN := $(ROOT)/bin
K8S_BIN := $(BIN)/k8s
GOLANGCI_LINT_VERSION ?= v2.15.0
CONTROLLER_GEN := go tool controller-gen
# The envtest suites start etcd and kube-apiserver from here.
export KUBEBUILDER_ASSETS := $(K8S_BIN)

.PHONY: all
all: build

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhook configurations into config/ from the markers in the code.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook

# The apply configurations are written afresh, so that those of a removed type go too.
.PHONY: generate
generate: ## Generate deepcopy code and apply configurations (api/v1alpha1/applyconfiguration) for the API types.
	rm -rf api/v1alpha1/applyconfiguration
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" applyconfiguration:headerFile="hack/boilerplate.go.txt" paths="./api/..."

# git diff misses a generated file that was never committed; git status does not.
.PHONY: verify-generated
verify-generated: generate manifests ## Fail when generated files are not committed up to date.
	@git diff --exit-code -- api config && test -z "$$(git status --porcelain -- api config)" || \
		{ git status --short -- api config; echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

.PHONY: chart
chart: $(BIN)/kustomize ## Generate the chart's CRDs, RBAC, webhooks, Services, Secret and PDB from config/default.
	go run ./hack/chartgen -kustomize $(BIN)/kustomize -chart charts/phiguard

.PHONY: helm-lint
helm-lint: $(BIN)/helm ## helm lint, and helm template with default and non-default values.
	$(BIN)/helm lint charts/phiguard
	$(BIN)/helm template phiguard charts/phiguard -n phiguard-system --kube-version v1.37.2 > /dev/null
	$(BIN)/helm template phiguard charts/phiguard -n phiguard-system --kube-version v1.37.2 \
		--set webhook.certManager.enabled=true --set serviceMonitor.enabled=true --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true --set policy.create=true > /dev/null

.PHONY: dashboard
dashboard: ## Generate the chart's Grafana dashboard (charts/phiguard/files/dashboard.json) from hack/dashboardgen; its tests (in make test) check it.
	cd hack/dashboardgen && go run .

.PHONY: verify-chart
verify-chart: chart controlplane $(BIN)/helm ## Fail when the chart drifts from config/, or its pod is not restricted.
	@git diff --exit-code -- charts || { echo "the chart is stale: run 'make chart' and commit"; exit 1; }
	go test -tags chart ./test/chart/ -count=1

.PHONY: vulncheck
vulncheck: $(BIN)/govulncheck ## govulncheck ./... against vuln.go.dev, or the offline snapshot in ../shared/vulndb (VULNDB=...) when it is unreachable.
	GOVULNCHECK=$(BIN)/govulncheck hack/vulncheck.sh

.PHONY: verify
verify: verify-generated verify-chart helm-lint $(BIN)/kustomize ## Generated files, chart, helm lint, kustomize build of config/default.
	$(BIN)/kustomize build config/default > /dev/null
	$(BIN)/kustomize build config/certmanager > /dev/null
	$(BIN)/kustomize build config/fail-closed-ephi > /dev/null

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(BIN)/golangci-lint ## gofmt check, go vet and golangci-lint.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	$(BIN)/golangci-lint run ./...

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# The Helm CLI, built from the module proxy.
HELM_VERSION ?= v3.22.0
$(BIN)/helm:
	GOBIN=$(BIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# govulncheck, from the module proxy; hack/vulncheck.sh picks its database.
GOVULNCHECK_VERSION ?= v1.9.0
$(BIN)/govulncheck:
	GOBIN=$(BIN) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

# kustomize renders config/default (v5.7.1: the newest that builds with Go 1.26).
KUSTOMIZE_VERSION ?= v5.7.1
$(BIN)/kustomize:
	GOBIN=$(BIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

##@ Build

.PHONY: controlplane
controlplane: ## Build etcd, kube-apiserver and kube-controller-manager (its garbage collector runs in tests) into bin/k8s (cached).
	hack/build-controlplane.sh etcd kube-apiserver kube-controller-manager

.PHONY: cluster-tools
cluster-tools: controlplane ## Also build kube-scheduler, kwok/kwokctl and kubectl, for the full local cluster (cached).
	hack/build-controlplane.sh kube-scheduler
	hack/build-kwok.sh
	hack/build-kubectl.sh

.PHONY: objectstore
objectstore: ## Build versitygw, the S3-compatible object store, into bin/backup (cached), for the tests of the immutability check.
	hack/build-backup.sh versitygw

.PHONY: backup-tools
backup-tools: ## Build the Velero server, velero-plugin-for-aws and versitygw into bin/backup (cached), for real backups on the local cluster.
	hack/build-backup.sh velero velero-plugin-for-aws versitygw

.PHONY: promtool
promtool: ## Build promtool from the Prometheus module into bin/ (cached), for the alert rule tests (test/alerts).
	hack/build-promtool.sh

.PHONY: build
build: ## Build the manager binary.
	go build -o $(BIN)/manager ./cmd

.PHONY: plugin
plugin: ## Build the kubectl plugin into bin/kubectl-phiguard: with bin/ on the PATH, run `kubectl phiguard`.
	go build -o $(BIN)/kubectl-phiguard ./cmd/kubectl-phiguard

# A release of the plugin for krew: one archive per platform of
# plugins/phiguard.yaml, and that manifest with the release's tag and each
# archive's sha256 in place of its placeholders (and without the comment
# that explains them), all in bin/dist.
PLUGIN_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
.PHONY: plugin-dist
plugin-dist: ## Build the plugin's krew archives and manifest into bin/dist, for release VERSION=vX.Y.Z.
	@[[ "$(VERSION)" =~ ^v[0-9]+[.][0-9]+[.][0-9]+ ]] || { echo "set VERSION to the release tag, such as VERSION=v0.1.0" >&2; exit 1; }
	rm -rf $(BIN)/dist && mkdir -p $(BIN)/dist
	sed -e '/^#/d' -e 's/v0[.]0[.]0-release/$(VERSION)/g' plugins/phiguard.yaml > $(BIN)/dist/phiguard.yaml
	for p in $(PLUGIN_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; archive=$(BIN)/dist/kubectl-phiguard_$${os}_$${arch}.tar.gz; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -o $(BIN)/dist/$$os-$$arch/kubectl-phiguard ./cmd/kubectl-phiguard; \
		tar -C $(BIN)/dist/$$os-$$arch -czf $$archive kubectl-phiguard; \
		sum=$$(sha256sum $$archive | cut -d' ' -f1); \
		sed -e "s/release-sha256-$$os-$$arch/$$sum/" $(BIN)/dist/phiguard.yaml > $(BIN)/dist/phiguard.yaml.new; \
		mv $(BIN)/dist/phiguard.yaml.new $(BIN)/dist/phiguard.yaml; \
	done

##@ Run

.PHONY: test
test: controlplane promtool objectstore ## Run every test: unit tests, the envtest suites on the real control plane, promtool's alert rule tests, the dashboard's.
	go test ./... -coverprofile $(BIN)/cover.out

.PHONY: scale
scale: controlplane build cluster-tools backup-tools plugin $(BIN)/helm ## Run the scale harness large (10,000 PHIWorkloads, 20,000 pods) and the kill case at 1,000 workloads, and print the goals table (see test/scale); takes over an hour on 2 cores.
	@mkdir -p $(BIN)/scale && rm -f $(BIN)/scale/figures.jsonl
	PHIGUARD_SCALE_FIGURES=$(BIN)/scale/figures.jsonl \
	PHIGUARD_SCALE_NAMESPACES=$${PHIGUARD_SCALE_NAMESPACES:-100} PHIGUARD_SCALE_WORKLOADS=$${PHIGUARD_SCALE_WORKLOADS:-100} \
	PHIGUARD_SCALE_PODS=$${PHIGUARD_SCALE_PODS:-2} PHIGUARD_SCALE_QUIET_SECONDS=$${PHIGUARD_SCALE_QUIET_SECONDS:-60} \
	PHIGUARD_SCALE_DRIFT=$${PHIGUARD_SCALE_DRIFT:-100} PHIGUARD_SCALE_NAMESPACES_LABELLED=$${PHIGUARD_SCALE_NAMESPACES_LABELLED:-500} \
	PHIGUARD_SCALE_POD_RATE=$${PHIGUARD_SCALE_POD_RATE:-200} PHIGUARD_SCALE_POD_SECONDS=$${PHIGUARD_SCALE_POD_SECONDS:-60} \
	PHIGUARD_SCALE_FAILOVER_WORKLOADS=$${PHIGUARD_SCALE_FAILOVER_WORKLOADS:-1000} PHIGUARD_SCALE_LABELLED=$${PHIGUARD_SCALE_LABELLED:-1000} \
		go test ./test/scale/ -run 'TestScale$$|TestLabelledNamespaces|TestLabelledPolicyChange|TestPodCreateRate|TestLeaderFailover' -count=1 -v -timeout 120m \
		| tee $(BIN)/scale/log | grep -E 'scale:|figure:|failover|^(ok|FAIL|---)'
	for n in $${PHIGUARD_SCALE_PROCESS_SIZES:-1000 10000}; do \
		limit=256MiB; [ $$n -le 1000 ] || limit=1GiB; \
		PHIGUARD_SCALE_FIGURES=$(BIN)/scale/figures.jsonl PHIGUARD_SCALE_PROCESS_WORKLOADS=$$n PHIGUARD_SCALE_PROCESS_MEMORY_LIMIT=$$limit \
		go test ./test/scale/ -run 'TestManagerProcessMemory' -count=1 -v -timeout 60m \
		| tee -a $(BIN)/scale/log | grep -E 'figure:|rss|RSS|^(ok|FAIL|---)' || exit 1; done
	PHIGUARD_FAULTS_WORKLOADS=$${PHIGUARD_FAULTS_WORKLOADS:-1000} go test -tags e2e ./test/e2e/ -count=1 -timeout 40m -v \
		-ginkgo.focus 'SIGKILLs of the manager' -ginkgo.v 2>&1 | tee -a $(BIN)/scale/log | grep -E 'faults|kill|^(ok|FAIL|---)|Ran '
	go test ./internal/safeguard/ -run '^$$' -bench 'ClaimDenied|ClaimUncovered|PodInjection' -benchmem -benchtime 20000x | tee $(BIN)/scale/bench.txt
	go run ./hack/scaletable -figures $(BIN)/scale/figures.jsonl -bench $(BIN)/scale/bench.txt | tee $(BIN)/scale/table.md

.PHONY: bench
bench: ## Run the Go benchmarks (pure functions on the reconcile path).
	go test ./internal/... -run '^$$' -bench . -benchmem

# Each target runs for FUZZTIME; go test fuzzes one target at a time. Their
# seed corpora (and the inputs fuzzing found) also run as tests in make test.
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz: ## Run each Go native fuzz target (test/fuzz) for FUZZTIME (default 60s); print executions and failures per target.
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: cluster-up
cluster-up: cluster-tools ## Start the full local cluster (kubeconfig in bin/cluster/phiguard/kubeconfig) with phiguard's CRDs.
	go run ./hack/cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and delete its data.
	go run ./hack/cluster down

.PHONY: e2e
e2e: cluster-tools backup-tools build plugin $(BIN)/helm ## Run the end-to-end suite: the built manager on the full local cluster, driven through the API.
	go test -tags e2e -p 1 ./test/e2e/ ./test/faults/ -count=1 -timeout 30m -v -ginkgo.v 2>&1 | grep -v -E '^\s*$$'

.PHONY: demo
demo: cluster-tools backup-tools build ## Start the full local cluster, the manager and the samples; print the live compliance table.
	@# A built binary, not go run: go run reports Ctrl-C as a failure even when the demo stops cleanly.
	go build -o $(BIN)/demo/demo ./hack/demo
	$(BIN)/demo/demo -manager $(BIN)/manager

.PHONY: clean
clean: ## Remove build outputs (keeps the cached control plane).
	rm -rf $(BIN)/manager $(BIN)/kubectl-phiguard $(BIN)/dist $(BIN)/demo $(BIN)/cover.out $(BIN)/cluster
