#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager (or the binaries named as arguments,
# e.g. `build.sh node` for kube-scheduler and kubelet as well) from the Go module proxy into a
# cache folder keyed by the versions in go.mod, and only when they are missing. Prints the folder
# holding the binaries on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
kube=$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/go.mod")
etcd=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/go.mod")
dest="${REGENT_CONTROLPLANE_CACHE:-$root/.cache/controlplane}/kube-${kube}_etcd-${etcd}"
bins=(etcd kube-apiserver kube-controller-manager)
if [ "${1:-}" = node ]; then
  bins+=(kube-scheduler kubelet)
elif [ $# -gt 0 ]; then
  bins=("$@")
fi
missing=()
for b in "${bins[@]}"; do [ -x "$dest/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "control plane: cached in $dest" >&2
  echo "$dest"
  exit 0
fi
echo "control plane: building ${missing[*]} (kubernetes $kube, etcd $etcd) into $dest" >&2
echo "control plane: the first build compiles Kubernetes from source and takes about 13 minutes on 2 cores" >&2
echo "control plane: (about 14 with kube-scheduler and kubelet, measured from an empty Go build cache);" >&2
echo "control plane: later runs reuse the cache" >&2
mkdir -p "$dest"
cd "$here"
start=$(date +%s)
for b in "${missing[@]}"; do
  case "$b" in
    etcd) pkg=go.etcd.io/etcd/server/v3 ;;
    *) pkg=k8s.io/kubernetes/cmd/$b ;;
  esac
  echo "control plane: go build $pkg ($(( $(date +%s) - start ))s so far)" >&2
  # Build to a temporary name so that an interrupted build never leaves a broken binary in the cache.
  CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dest/$b.tmp" "$pkg"
  mv "$dest/$b.tmp" "$dest/$b"
done
echo "control plane: built in $(( $(date +%s) - start ))s" >&2
echo "$dest"
