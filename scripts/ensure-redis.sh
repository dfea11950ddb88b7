#!/usr/bin/env bash
# Makes sure Debian's redis-server binary is there for the change feed's Redis sink and its
# tests. As root on a Debian/Ubuntu machine it installs redis-server through apt-get, without
# starting its service (the tests start their own server on a free port and stop it by pid).
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]; }
if have redis-server; then exit 0; fi
if ! can_install; then
  echo "ezctl: no redis-server found; install it first: sudo apt-get install redis-server" >&2
  exit 2
fi
echo "ezctl: installing redis-server through apt-get (its service is not started)" >&2
apt_install redis-server
echo "ezctl: $(redis-server --version)" >&2
