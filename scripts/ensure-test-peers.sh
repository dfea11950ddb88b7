#!/usr/bin/env bash
# Peers the tests read with their own code (not benchmarks): MHA 0.58's Perl modules
# (mha4mysql-manager, mha4mysql-node from Debian), whose MHA::Config reads the files `ezctl emha
# mha-config` writes. As root on a Debian/Ubuntu machine the missing ones are installed through
# apt-get; otherwise the command to run is printed and the test that needs them says so.
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
missing=()
perl -MMHA::Config -e 1 >/dev/null 2>&1 || missing+=(mha4mysql-manager mha4mysql-node)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! can_install; then
  echo "ezctl tests: missing ${missing[*]}; install them first: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "ezctl tests: installing ${missing[*]} through apt-get" >&2
apt_install "${missing[@]}"
