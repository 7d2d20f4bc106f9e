#!/usr/bin/env bash
# Several "machines" on one box: network namespaces joined through a bridge
# in a switch namespace, with link-local addresses and no default route, so
# no packet can leave. Used by the multi-host tests.
#   netns_hosts.sh up   PREFIX N   -> hosts PREFIX-h0..h{N-1} at 169.254.77.10+i
#   netns_hosts.sh down PREFIX     -> removes every namespace named PREFIX-*
set -euo pipefail
cmd=$1 prefix=$2
case "$cmd" in
  up)
    n=$3
    ip netns add "$prefix-sw"
    ip -n "$prefix-sw" link add br0 type bridge
    ip -n "$prefix-sw" link set br0 up
    ip -n "$prefix-sw" link set lo up
    for ((i = 0; i < n; i++)); do
      h="$prefix-h$i"
      ip netns add "$h"
      ip link add "v${i}${prefix: -6}" type veth peer name "s${i}${prefix: -6}"
      ip link set "v${i}${prefix: -6}" netns "$h"
      ip link set "s${i}${prefix: -6}" netns "$prefix-sw"
      ip -n "$h" link set "v${i}${prefix: -6}" name eth0
      ip -n "$h" addr add "169.254.77.$((10 + i))/24" dev eth0
      ip -n "$h" link set eth0 up
      ip -n "$h" link set lo up
      ip -n "$prefix-sw" link set "s${i}${prefix: -6}" master br0
      ip -n "$prefix-sw" link set "s${i}${prefix: -6}" up
    done
    ;;
  down)
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$ns" || true
    done
    ;;
  *)
    echo "usage: $0 up PREFIX N | down PREFIX" >&2
    exit 2
    ;;
esac
