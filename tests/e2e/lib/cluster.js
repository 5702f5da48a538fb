// Several real chorusd forming one cluster (docs/cluster.md §3.3), as the C++ cluster tests'
// tests/integration/node_cluster_support.h does: the Raft and inter-node ports are picked before
// any node starts (the voters list names every voter's Raft address), member ids 1..n, every
// node a voter and a seed of the others, short timings (heartbeat 100 ms, dead after 600 ms),
// R = 2.
//
//   const cluster = await ChorusCluster.start(3);     // waits for one agreed, fully placed map
//   cluster.node(1).api('publish', ...)
//   cluster.partitionOf('chat:a')                     // C-5: FNV-1a 64 mod partitions
//   await cluster.partitionOn(node, 'chat:a')         // that node's applied map entry
//   cluster.killNine(1)                               // SIGKILL, no checks
//   await cluster.close()                             // stops the others (exit 0 checked)
import { rmSync } from 'node:fs';
import net from 'node:net';

import { ChorusNode } from './harness.js';
import { eventually } from './wait.js';

export const CLUSTER_PARTITIONS = 64;

// C-5, computed here independently of the node's code.
export function partitionOfChannel(channel, partitions = CLUSTER_PARTITIONS) {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(channel, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % BigInt(partitions));
}

// A TCP port that was free a moment ago, below the kernel's ephemeral range (the nodes' own
// port-0 listeners and outgoing connections take ephemeral ports): random in 20000-32767,
// checked with a bind.
async function pickPort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port');
}

async function clusterConfigs(n) {
  const raft = [];
  const peer = [];
  for (let i = 0; i < n; i++) {
    raft.push(await pickPort());
    peer.push(await pickPort());
  }
  const voters = raft.map((p, i) => `${i + 1}@127.0.0.1:${p}`);
  return peer.map((p, i) => ({
    cluster: {
      member_id: i + 1,
      voters,
      endpoint: `tcp://127.0.0.1:${p}`,
      seeds: peer.filter((_, j) => j !== i).map((q) => `tcp://127.0.0.1:${q}`),
      heartbeat_ms: 100,
      dead_after_ms: 600,
      partitions: CLUSTER_PARTITIONS,
      replication_factor: 2,
      // The harness stops nodes with SIGTERM: no C-20 drain (docs/cluster.md §16.11), as the
      // C++ tests' NodeProcess does.
      drain_timeout_ms: 0,
    },
  }));
}

export class ChorusCluster {
  // Starts `n` nodes and waits until every one applies the same fully placed map with every
  // member alive. A port picked may be taken before its node binds it: the cluster then starts
  // again on new ports (3 attempts).
  static async start(n, extra = {}) {
    for (let attempt = 1; ; attempt++) {
      const nodes = [];
      try {
        for (const config of await clusterConfigs(n)) {
          nodes.push(await ChorusNode.start({ ...extra, cluster: { ...extra.cluster, ...config.cluster } }));
        }
      } catch (err) {
        for (const node of nodes) node.kill();
        if (attempt >= 3) throw err;
        continue;
      }
      const cluster = new ChorusCluster(nodes);
      try {
        await cluster._awaitAgreedMap();
      } catch (err) {
        await cluster.close().catch(() => {});
        throw err;
      }
      return cluster;
    }
  }

  constructor(nodes) {
    this.nodes = nodes; // index = member id - 1
    this.killed = new Set();
    this.table = null; // the agreed partition table at start
  }

  node(member) {
    return this.nodes[member - 1];
  }

  async _awaitAgreedMap() {
    let last;
    await eventually(
      async () => {
        let first;
        for (const node of this.nodes) {
          const c = await node.api('cluster', {});
          last = c;
          if (c.unassigned !== 0 || c.members.length !== this.nodes.length) return false;
          if (c.members.some((m) => m.state !== 'alive')) return false;
          first ??= c;
          if (JSON.stringify(c.partitions) !== JSON.stringify(first.partitions)) return false;
        }
        this.table = first.partitions;
        return true;
      },
      { timeoutMs: 20000, intervalMs: 50, message: 'one agreed map', describe: () => JSON.stringify(last) },
    );
  }

  partitionOf(channel) {
    return partitionOfChannel(channel);
  }

  // A `chat:` channel whose partition has `primary` and `backup` as its replicas (R = 2).
  channelWithReplicas(primary, backup, stem) {
    for (let i = 0; ; i++) {
      const ch = `chat:${stem}${i}`;
      const p = this.table[this.partitionOf(ch)];
      if (p.primary === primary && p.replicas.includes(backup)) return ch;
    }
  }

  // The partition of `channel` in `node`'s applied map.
  async partitionOn(node, channel) {
    const c = await node.api('cluster', {});
    return c.partitions[this.partitionOf(channel)];
  }

  // SIGKILL (kill -9) of a member; its temp dir is removed at close().
  killNine(member) {
    const node = this.node(member);
    this.killed.add(member);
    node.proc.kill('SIGKILL');
    return node.exited;
  }

  // Stops every live node (SIGTERM, exit 0 checked) and removes the temp dirs; the first
  // failure is thrown after all are stopped.
  async close() {
    let failure;
    for (const [i, node] of this.nodes.entries()) {
      if (this.killed.has(i + 1)) {
        node.kill();
        await node.exited;
        rmSync(node.dir, { recursive: true, force: true });
        continue;
      }
      try {
        await node.close();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  }

  logs() {
    return this.nodes.map((n, i) => `=== member ${i + 1} ===\n${n.logs()}`).join('\n');
  }
}
