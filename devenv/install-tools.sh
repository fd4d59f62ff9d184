#!/usr/bin/env bash
# Installs everything tests and the lab need, idempotently: Debian packages (the container engine
# podman with runc, buildah and mmdebstrap among them), then Go-built binaries (kube-apiserver,
# kubectl, etcd, etcdctl, cnitool, helm) into the cache. Test images are built from these by
# the test runner (devenv/containers/images.ts).
# A binary is rebuilt only when the wrapper module that pins it changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/weft"
bin="$cache/bin"
mkdir -p "$bin"
# Several checkouts may share the cache: one installer at a time.
exec 9>"$cache/.install.lock"
flock 9

need_apt=()
for pair in ip:iproute2 bridge:iproute2 ping:iputils-ping nsenter:util-linux openssl:openssl bird:bird2 birdc:bird2 gobgpd:gobgpd \
  /usr/lib/cni/bridge:containernetworking-plugins \
  podman:podman runc:runc conmon:conmon buildah:buildah mmdebstrap:mmdebstrap; do
  cmd=${pair%%:*} pkg=${pair##*:}
  if [[ $cmd == /* ]]; then [[ -x $cmd ]] || need_apt+=("$pkg")
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

# build NAME STAMP_INPUTS... -- go build arguments (run inside the module dir given by MODDIR)
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
build() {
  local moddir=$1 out=$2; shift 2
  local stamp; stamp=$(stamp_of "$moddir/go.mod" "$moddir/go.sum")
  # A static build (CGO_ENABLED=0) is redone when the cached binary is dynamic (ldd says so).
  if [[ -x $bin/$out && -f $bin/.$out.stamp && $(cat "$bin/.$out.stamp") == "$stamp" ]] &&
    { [[ ${CGO_ENABLED:-} != 0 ]] || ! ldd "$bin/$out" >/dev/null 2>&1; }; then return 0; fi
  echo "install-tools: building $out (first time takes minutes; cached in $bin)"
  (cd "$moddir" && GOFLAGS=-mod=mod go build -trimpath -o "$bin/$out.tmp" "$@")
  mv "$bin/$out.tmp" "$bin/$out"
  echo "$stamp" > "$bin/.$out.stamp"
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
build "$here/tools" helm -ldflags "-s -w" helm.sh/helm/v3/cmd/helm
echo "install-tools: ready in $bin"
