#!/usr/bin/env bash
# Makes sure Debian's redis-server binary is there for the change feed's Redis sink and its
# tests. As root on a Debian/Ubuntu machine it installs redis-server through apt-get, without
# starting its service (the tests start their own server on a free port and stop it by pid).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]; }
if have redis-server; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ezctl: no redis-server found; install it first: sudo apt-get install redis-server" >&2
  exit 2
fi
echo "ezctl: installing redis-server through apt-get (its service is not started)" >&2
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
apt-get update -qq
apt-get install -y -qq redis-server >/dev/null
echo "ezctl: $(redis-server --version)" >&2
