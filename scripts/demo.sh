#!/usr/bin/env bash
# The README's demo: a two-zone sandbox of real servers, the demo schema, the topology.
# Everything it starts is stopped again on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-server.sh
dir=.ezctl/demo
ez() { echo; echo "\$ ezctl $*"; node bin/ezctl "$@"; }
stop() { node bin/ezctl sandbox down --dir "$dir" >/dev/null 2>&1 || true; }
trap stop EXIT
node bin/ezctl sandbox down --dir "$dir" >/dev/null 2>&1 || true
ez sandbox up --dir "$dir" --zones bj,sh --replicas 1
export EZCTL_CONFIG="$dir/ezctl.yaml"
ez sandbox load --rows 5000
ez sandbox workload --tps 100 --seconds 3
ez topo show
ez topo check
ez sandbox down --dir "$dir"
trap - EXIT
