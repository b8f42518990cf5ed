#!/usr/bin/env bash
# Installs what a regent test node needs beside the Kubernetes binaries (tools/controlplane/build.sh
# node): containerd, runc, the CNI plugins and iptables, from Debian's packages. Idempotent: does
# nothing when they are there. Needs root (CI and the development machines run as root). Starts
# no service: the node harness starts containerd itself, inside a network namespace of its own.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -eq 0 ]; then
  echo "node: containerd, runc, CNI plugins and iptables are installed" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "node: missing ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "node: installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
