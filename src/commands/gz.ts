// ezctl gz: the routing table (GZS) of each cluster and the zone switches that change it: a global
// cluster's write zone (`gz switch`), a sharding cluster's shard ranges (`gz move`).
import type { Command } from 'commander';
import { examples } from './common.js';

export function registerGz(program: Command): void {
  const gz = program
    .command('gz')
    .description("the routing table (GZS: a global cluster's write zone, a sharding cluster's shard ranges) and the zone switches that change it: block writes, drain, verify, flip, roll back")
    .addHelpText('after', examples('ezctl gz routes --cluster orders', 'ezctl gz switch --cluster users --to sh', 'ezctl gz move --cluster orders --shards 0-31 --to sh --execute'));
  void gz;
}
