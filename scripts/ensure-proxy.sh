#!/usr/bin/env bash
# Makes sure HAProxy is there for `ezctl sandbox up --proxy` (and its tests). As root on a
# Debian/Ubuntu machine it installs Debian's haproxy through apt-get, without starting its
# service (the sandbox starts its own proxies on free ports).
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have haproxy; then exit 0; fi
if ! can_install; then
  echo "ezctl: no haproxy found (needed by \`sandbox up --proxy\` and its tests); install it first: sudo apt-get install haproxy" >&2
  exit 2
fi
echo "ezctl: installing haproxy through apt-get (its service is not started)" >&2
apt_install haproxy
echo "ezctl: $(/usr/sbin/haproxy -v | head -1)" >&2
