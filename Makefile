# Weft: `make lab` brings up a local cluster network, `make test` runs every test.
# Both install what they need first and are safe to run twice.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weft
export WEFT_TOOLS_BIN ?= $(CACHE)/bin
export NODE_OPTIONS ?= --enable-source-maps
MODE ?= vxlan
DATASTORE ?= kubernetes
# netns: nodes are network namespaces with an agent the lab starts (fast); kubelet: real kubelets,
# containerd and kube-proxy, Weft installed by its chart from the image built here.
NODES ?= netns
FLANNEL_NODES ?= 0
NODE_COUNT ?= 3
# netns labs only: the families of the underlay and the pods, and one or two underlay subnets
STACK ?= ipv4
TOPOLOGY ?= one-subnet

.PHONY: help deps tools tools-real-nodes tools-conformance conformance chaos build generate lint images test test-unit lab lab-down cluster-up cluster-down engine-up engine-down bench clean

help:
	@echo "make lab         bring up a local Weft cluster network (MODE=vxlan|host-gw|bgp|bgp-rr,"
	@echo "                 STACK=ipv4|dual|ipv6, TOPOLOGY=one-subnet|two-subnets, DATASTORE=kubernetes|etcd)"
	@echo "                 DATASTORE=etcd FLANNEL_NODES=1: plus a host running the real flanneld (mixed cluster)"
	@echo "                 NODES=kubelet: on real kubelets, Weft installed with Helm (MODE=vxlan|host-gw|bgp, NODE_COUNT=3)"
	@echo "make lab-down    remove everything the lab made"
	@echo "make test        run every test (installs what it needs)"
	@echo "make cluster-up  start a local kube-apiserver + etcd with the weft.dev CRDs"
	@echo "make engine-up   start the tests' container engine (podman API) for single test files"
	@echo "make images      build the test container images (etcd, FRR); WEFT_CONTAINERS=off skips them"
	@echo "make bench       run the benchmarks"
	@echo "make conformance upstream [sig-network] specs against Weft on 3 real nodes (NODE_COUNT, MODE)"
	@echo "make chaos       the long fault suite on real nodes: upgrade from the previous release and a 2-minute"
	@echo "                 apiserver outage under pod traffic, in every mode (WEFT_UPGRADE_FROM)"
	@echo "make generate    write crds/, charts/weft/crds/ and deploy/weft.yaml from the types in api/"

node_modules/.weft-installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.weft-installed tools

tools:
	@devenv/install-tools.sh

# What clusters of real kubelets need (containerd, kubelet, kube-proxy, ...): make test and
# make lab NODES=kubelet; the netns lab and unit runs do without.
tools-real-nodes:
	@devenv/install-tools.sh --real-nodes

# The upstream e2e suite (e2e.test, ginkgo) on top of the real-node tools.
tools-conformance:
	@devenv/install-tools.sh --conformance

# Kubernetes' own [sig-network] specs (e2e.test) on real nodes with Weft installed by its chart;
# what is skipped, and why, is test/conformance/skip-list.txt. Prints ginkgo's summary.
conformance: deps tools-conformance build
	node dist/test/conformance/run.js --nodes $(NODE_COUNT) --mode $(MODE)

# The fault suite's long version (make test runs the short one): 3 nodes per mode, helm upgrade
# from the previous release, a 120 s apiserver and etcd outage, a value change, all under traffic.
chaos: deps tools-real-nodes build
	WEFT_FAULTS=long node dist/test/run-suite.js dist/test/realnodes/faults.test.js

build: node_modules/.weft-installed
	rm -rf dist
	npx tsc -p tsconfig.json
	node dist/cni/bundle.js

# The CRDs come from api/ (types, doc comments, schemas beside them); deploy/weft.yaml is the
# chart rendered with them (helm from devenv). The ship suite fails when these are stale.
generate: deps build
	node dist/devenv/crdgen/main.js

lint: node_modules/.weft-installed
	npx biome check .

# Test images come from the Debian mirror and the Go-built binaries: built here, at install
# time, and cached by a stamp of their inputs.
images: deps build
	node dist/devenv/containers/cli.js images

test: deps tools-conformance build lint images
	node dist/test/run-suite.js

test-unit: node_modules/.weft-installed build
	node dist/test/run-suite.js unit

cluster-up: deps build
	node dist/devenv/cli.js up

cluster-down: node_modules/.weft-installed build
	node dist/devenv/cli.js down

engine-up: deps build
	node dist/devenv/containers/cli.js up

engine-down: node_modules/.weft-installed build
	node dist/devenv/containers/cli.js down

ifeq ($(NODES),kubelet)
lab: deps tools-real-nodes build
	node dist/lab/kubelet.js up --mode $(MODE) --nodes $(NODE_COUNT)
else
lab: deps build
	node dist/lab/main.js up --mode $(MODE) --datastore $(DATASTORE) --stack $(STACK) --topology $(TOPOLOGY) --flannel-nodes $(FLANNEL_NODES)
endif

lab-down: node_modules/.weft-installed build
	node dist/lab/kubelet.js down
	node dist/lab/main.js down

bench: deps build
	node dist/bench/run.js $(BENCH)

clean:
	rm -rf dist
