#!/usr/bin/env bash
# Makes sure libfaketime is there for `ezctl drill clock-skew` (and its test): the drill restarts
# one zone's servers with LD_PRELOAD=libfaketime.so.1 and FAKETIME=+5s. As root on a Debian/Ubuntu
# machine it installs Debian's faketime package through apt-get.
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
have_lib() {
  for d in /usr/lib/x86_64-linux-gnu/faketime /usr/lib/aarch64-linux-gnu/faketime /usr/lib/faketime /usr/local/lib/faketime; do
    [ -e "$d/libfaketime.so.1" ] && return 0
  done
  return 1
}
if have_lib; then exit 0; fi
if ! can_install; then
  echo "ezctl: no libfaketime found (needed by \`ezctl drill clock-skew\` and its test); install it first: sudo apt-get install faketime" >&2
  exit 2
fi
echo "ezctl: installing faketime (libfaketime) through apt-get" >&2
apt_install faketime
have_lib || { echo "ezctl: faketime installed, but no libfaketime.so.1 in the usual folders" >&2; exit 2; }
