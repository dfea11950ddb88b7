#!/usr/bin/env bash
# The README's demo: a two-zone sandbox of real servers, the demo schema, the topology, DRC
# replicating both ways under a workload with conflicts, then the consistency check finding,
# repairing and re-checking a difference.
# Everything it starts is stopped again on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-server.sh
dir=.ezctl/demo
ez() { echo; echo "\$ ezctl $*"; node bin/ezctl "$@"; }
stop() {
  node bin/ezctl --config "$dir/ezctl.yaml" drc stop >/dev/null 2>&1 || true
  node bin/ezctl sandbox down --dir "$dir" >/dev/null 2>&1 || true
}
trap stop EXIT
node bin/ezctl sandbox down --dir "$dir" >/dev/null 2>&1 || true
ez sandbox up --dir "$dir" --zones bj,sh --replicas 1
export EZCTL_CONFIG="$dir/ezctl.yaml"
ez sandbox load --rows 5000
ez topo show
ez topo check
# DRC: both directions, then writes in both zones, a tenth of them into the other zone's shards
# (conflicts and illegal writes), then both zones waited on and compared through the status.
ez drc start --detach
ez sandbox workload --tps 100 --seconds 5 --conflict-ratio 0.1
ez drc wait --from bj --to sh --timeout 30s
ez drc wait --from sh --to bj --timeout 30s
ez drc status
# DCP: every row compared across the zones (consistent), then a difference DRC cannot see (written
# with sql_log_bin=0 in sh) is found, repaired (the newest DRC timestamp wins) and checked clean.
ez check full
echo
echo "\$ mariadb ... -e \"SET sql_log_bin=0; UPDATE ezdemo.users SET balance = balance + 100 WHERE id = 42\"   # at sh's master"
sh_port=$(node bin/ezctl --json topo show | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.find(n=>n.name==="sh-master").address.split(":").pop())})')
mariadb --defaults-file="$dir/client.cnf" -h 127.0.0.1 -P "$sh_port" -e "SET sql_log_bin=0; UPDATE ezdemo.users SET balance = balance + 100 WHERE id = 42"
ez check full --tables ezdemo.users || true
ez repair
ez repair --execute
ez check full
ez drc stop
ez sandbox down --dir "$dir"
trap - EXIT
