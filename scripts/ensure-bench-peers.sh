#!/usr/bin/env bash
# The peers the benchmarks measure ezctl against, from Debian: percona-toolkit (pt-table-checksum,
# pt-online-schema-change), sysbench (the foreground load), mydumper. As root on a Debian/Ubuntu
# machine the missing ones are installed through apt-get; otherwise the command to run is printed
# and the benchmarks that need them say so themselves.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have pt-online-schema-change && have pt-table-checksum || missing+=(percona-toolkit)
have sysbench || missing+=(sysbench)
have mydumper || missing+=(mydumper)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ezctl bench: missing peers; install them first: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "ezctl bench: installing ${missing[*]} through apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
