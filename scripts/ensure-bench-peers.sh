#!/usr/bin/env bash
# The peers the benchmarks measure ezctl against, from Debian: percona-toolkit (pt-table-checksum,
# pt-online-schema-change), sysbench (the foreground load), mydumper, MHA 0.58 (mha4mysql-manager
# and mha4mysql-node: masterha_master_switch, against `ezctl emha`) and socat (bench/emha.ts's MHA
# change script moves the HAProxy route with it; without it a node one-liner does). As root on a
# Debian/Ubuntu machine the missing ones are installed through apt-get; otherwise the command to
# run is printed and the benchmarks that need them say so themselves.
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have pt-online-schema-change && have pt-table-checksum || missing+=(percona-toolkit)
have sysbench || missing+=(sysbench)
have mydumper || missing+=(mydumper)
have masterha_master_switch && perl -MMHA::NodeUtil -e 1 >/dev/null 2>&1 || missing+=(mha4mysql-manager mha4mysql-node)
have socat || missing+=(socat)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! can_install; then
  echo "ezctl bench: missing peers; install them first: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "ezctl bench: installing ${missing[*]} through apt-get" >&2
apt_install "${missing[@]}"
