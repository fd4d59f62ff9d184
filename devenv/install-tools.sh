#!/usr/bin/env bash
# Installs everything tests and the lab need, idempotently: Debian packages (the container engine
# podman with runc, buildah and mmdebstrap among them), then Go-built binaries (kube-apiserver,
# kubectl, etcd, etcdctl, cnitool, helm, flanneld) and the native weft-cni plugin (C) into the
# cache. Test images are built from these by the test runner (devenv/containers/images.ts).
# With --real-nodes also what clusters of real kubelets need: Debian's containerd, conntrack,
# iptables; kubelet, kube-proxy, kube-scheduler, kube-controller-manager, coredns, agnhost and
# pause (static, for images). With --conformance also the upstream e2e suite: e2e.test and ginkgo
# (implies --real-nodes).
# A binary is rebuilt only when the wrapper module that pins it (or its build flags, or for
# weft-cni its source) changes.
set -euo pipefail
real_nodes=false
conformance=false
for arg in "$@"; do
  case $arg in
    --real-nodes) real_nodes=true ;;
    --conformance) real_nodes=true conformance=true ;;
    *) echo "usage: install-tools.sh [--real-nodes] [--conformance]" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/weft"
bin="$cache/bin"
mkdir -p "$bin"
# Several checkouts may share the cache: one installer at a time.
exec 9>"$cache/.install.lock"
flock 9

need_apt=()
pairs=()
for pair in cc:gcc "/usr/lib/$(uname -m)-linux-gnu/libc.a:libc6-dev" ip:iproute2 bridge:iproute2 ping:iputils-ping nsenter:util-linux openssl:openssl bird:bird2 birdc:bird2 gobgpd:gobgpd \
  /usr/lib/cni/bridge:containernetworking-plugins \
  podman:podman runc:runc conmon:conmon buildah:buildah mmdebstrap:mmdebstrap nft:nftables; do
  pairs+=("$pair")
done
if $real_nodes; then
  for pair in containerd:containerd ctr:containerd conntrack:conntrack iptables:iptables; do
    pairs+=("$pair")
  done
fi
for pair in "${pairs[@]}"; do
  cmd=${pair%%:*} pkg=${pair##*:}
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] || need_apt+=("$pkg")
  else command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg"); fi
done
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-tools: missing Debian packages ${need_apt[*]} and not root: run 'sudo apt-get install ${need_apt[*]}'" >&2
    exit 1
  fi
  echo "install-tools: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need_apt[@]}" | sort -u) >/dev/null
fi

command -v go >/dev/null 2>&1 || { echo "install-tools: Go is required (https://go.dev/dl) to build the test control plane" >&2; exit 1; }

# build MODDIR OUT GO-BUILD-ARGS...: go build inside the wrapper module MODDIR into $bin/OUT.
# The stamp is the module's go.mod and go.sum, plus any extra inputs in $stamp_extra (build flags
# that are not in the module, such as CGO_ENABLED=0), so that changing either rebuilds.
stamp_of() { { cat "$@"; [[ -z ${stamp_extra:-} ]] || echo "$stamp_extra"; } | sha256sum | cut -c1-16; }
build() {
  local moddir=$1 out=$2; shift 2
  local inputs=("$moddir/go.mod")
  if [[ -f $moddir/go.sum ]]; then inputs+=("$moddir/go.sum"); fi
  local stamp; stamp=$(stamp_of "${inputs[@]}")
  # A static build (CGO_ENABLED=0) is redone when the cached binary is dynamic (ldd says so).
  if [[ -x $bin/$out && -f $bin/.$out.stamp && $(cat "$bin/.$out.stamp") == "$stamp" ]] &&
    { [[ ${CGO_ENABLED:-} != 0 ]] || ! ldd "$bin/$out" >/dev/null 2>&1; }; then return 0; fi
  echo "install-tools: building $out (first time takes minutes; cached in $bin)"
  local t0=$SECONDS
  (cd "$moddir" && GOFLAGS=-mod=mod go ${gocmd:-build} -trimpath -o "$bin/$out.tmp" "$@")
  mv "$bin/$out.tmp" "$bin/$out"
  echo "$stamp" > "$bin/.$out.stamp"
  echo "install-tools: built $out in $((SECONDS - t0)) s"
}

k8s_ver=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/k8s/go.mod")
k8s_minor=$(echo "$k8s_ver" | cut -d. -f2)
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"
build "$here/k8s" kube-apiserver -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver
build "$here/k8s" kubectl -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kubectl
# static: the test etcd image is this binary alone on an empty base
CGO_ENABLED=0 build "$here/etcd" etcd -ldflags "-s -w" go.etcd.io/etcd/server/v3
CGO_ENABLED=0 build "$here/etcd" etcdctl -ldflags "-s -w" go.etcd.io/etcd/etcdctl/v3
build "$here/tools" cnitool -ldflags "-s -w" github.com/containernetworking/cni/cnitool
# helm's own Makefile stamps the Kubernetes version its client-go speaks (major+1 . minor of
# k8s.io/client-go v0.X.Y) into chartutil and the linter; without it helm assumes Kubernetes 1.20
# and refuses charts with a kubeVersion constraint unless given --kube-version.
client_go=$(awk '$1=="k8s.io/client-go" {print $2}' "$here/tools/go.mod" | sed 's/^v//')
helm_k8s_major=$(( $(echo "$client_go" | cut -d. -f1) + 1 ))
helm_k8s_minor=$(echo "$client_go" | cut -d. -f2)
helm_ver=$(awk '$1=="helm.sh/helm/v3" {print $2}' "$here/tools/go.mod")
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_ver"
for pkg in chartutil lint/rules; do
  helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=$helm_k8s_major -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$helm_k8s_minor"
done
stamp_extra="$helm_ldflags" build "$here/tools" helm -ldflags "$helm_ldflags" helm.sh/helm/v3/cmd/helm
# flanneld, the peer of the Flannel interop tests and of `make lab FLANNEL_NODES=n`: built as
# upstream documents it (go install of the module at a tag, with flannel's own go.mod and its
# replace-free dependency set), so the stamp is the version.
flannel_ver=v0.26.7
install_module() {
  local mod=$1 ver=$2 out=$3; shift 3
  local stamp; stamp=$(echo "$mod@$ver $*" | sha256sum | cut -c1-16)
  if [[ -x $bin/$out && -f $bin/.$out.stamp && $(cat "$bin/.$out.stamp") == "$stamp" ]]; then return 0; fi
  echo "install-tools: building $out $ver (first time takes minutes; cached in $bin)"
  local t0=$SECONDS tmp; tmp=$(mktemp -d "$bin/.$out.XXXXXX")
  GOBIN=$tmp go install -trimpath "$@" "$mod@$ver"
  mv "$tmp/${mod##*/}" "$bin/$out"
  rm -rf "$tmp"
  echo "$stamp" > "$bin/.$out.stamp"
  echo "install-tools: built $out in $((SECONDS - t0)) s"
}
install_module github.com/flannel-io/flannel "$flannel_ver" flanneld \
  -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$flannel_ver"
if $real_nodes; then
  node_mod="$here/k8s-node"
  build "$node_mod" kubelet -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kubelet
  build "$node_mod" kube-proxy -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-proxy
  build "$node_mod" kube-scheduler -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-scheduler
  build "$node_mod" kube-controller-manager -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-controller-manager
  # agnhost runs in images built from scratch: static, no libc
  CGO_ENABLED=0 stamp_extra=CGO_ENABLED=0 build "$node_mod" agnhost -ldflags "-s -w" k8s.io/kubernetes/test/images/agnhost
  # upstream's conntrack regression check (an e2e image of its own)
  CGO_ENABLED=0 stamp_extra=CGO_ENABLED=0 build "$node_mod" regression-issue-74839 -ldflags "-s -w" k8s.io/kubernetes/test/images/regression-issue-74839
  # the pod sandbox's process; its source lives here, so the source is part of the stamp
  CGO_ENABLED=0 stamp_extra="CGO_ENABLED=0 $(cat "$here/pause/main.go")" build "$here/pause" pause -ldflags "-s -w" .
  build "$here/coredns" coredns -ldflags "-s -w" github.com/coredns/coredns
fi
if $conformance; then
  build "$node_mod" ginkgo -ldflags "-s -w" github.com/onsi/ginkgo/v2/ginkgo
  gocmd="test -c" stamp_extra="test -c" build "$node_mod" e2e.test -ldflags "$k8s_ldflags" k8s.io/kubernetes/test/e2e
fi
# The native CNI plugin (cni/native): a static C program, cached under the hash of its source and
# build script, so that worktrees with different sources never overwrite each other's binary.
root=$here
while [[ ! -f $root/package.json && $root != / ]]; do root=$(dirname "$root"); done
native="$bin/weft-cni-$(stamp_of "$root/cni/native/weft-cni.c" "$root/cni/native/build.sh")"
if [[ ! -x $native ]]; then
  echo "install-tools: building $(basename "$native") (the native CNI plugin)"
  "$root/cni/native/build.sh" "$native"
fi
echo "install-tools: ready in $bin"
