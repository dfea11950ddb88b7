#!/usr/bin/env bash
# Makes sure HAProxy is there for `ezctl sandbox up --proxy` (and its tests). As root on a
# Debian/Ubuntu machine it installs Debian's haproxy through apt-get, without starting its
# service (the sandbox starts its own proxies on free ports).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have haproxy; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ezctl: no haproxy found (needed by \`sandbox up --proxy\` and its tests); install it first: sudo apt-get install haproxy" >&2
  exit 2
fi
echo "ezctl: installing haproxy through apt-get (its service is not started)" >&2
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created=1
fi
cleanup() { if [ -n "$created" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# another apt-get (an engineer installing something else) holds the lock for a while: wait for it
apt-get -o DPkg::Lock::Timeout=600 install -y -qq haproxy >/dev/null
echo "ezctl: $(/usr/sbin/haproxy -v | head -1)" >&2
