// Issue 12 test 8: the real `centrifuge` SDK through a TCP proxy cut during a failover recovers
// exactly (docs/cluster.md §16.3 "Failover (as built)", C-17). Three real chorusd, R = 2, short
// timings. The SDK dials the proxy, which points at A, the primary of a channel with history
// and recovery; the SDK subscribes (recoverable) and the server API of another node publishes
// about 100/s, recording every acknowledged (offset, epoch). Then, in this order: the proxy cuts
// the SDK's connection and refuses new ones, A is killed with SIGKILL, the proxy points to a
// surviving node that is neither A nor the backup to be promoted and lets connections through
// again: the SDK reconnects and resubscribes with its position while the failover is still in
// progress (dead_after_ms is 600 ms, the SDK's reconnect delay at most 300 ms). The SDK's stream
// is checked as etcd's watch tests do: ordered, no duplicate, no gap, one payload per offset,
// every acknowledged publication exactly once, the resubscription recovered:true in the same
// epoch.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

import { ChorusCluster } from '../lib/cluster.js';
import { SDK_TEST_OPTIONS, TOKEN_SECRET, connect, subscribe } from '../lib/harness.js';
import { TcpProxy } from '../lib/proxy.js';
import { userToken } from '../lib/token.js';
import { eventually, record } from '../lib/wait.js';

describe('cluster failover with the SDK', () => {
  test('issue 12 test 8: proxy cut while the primary is killed: the SDK recovers exactly', async () => {
    const cluster = await ChorusCluster.start(3);
    const A = 1;
    const X = cluster.table.find((p) => p.primary === A).replicas.find((m) => m !== A);
    const Y = 6 - A - X; // the third member: neither the primary nor its backup
    const CH = cluster.channelWithReplicas(A, X, 'sdkfail');
    const a = cluster.node(A);
    const x = cluster.node(X);
    const y = cluster.node(Y);
    const before = cluster.table[cluster.partitionOf(CH)];

    let proxy;
    let client;
    let publishing = false;
    let publisher = Promise.resolve();
    try {
      // §6 step 2: only an in-sync backup is promoted with the channel's lineage kept.
      await eventually(async () => (await cluster.partitionOn(a, CH)).in_sync.includes(X), {
        timeoutMs: 10000,
        message: `member ${X} in the partition's in_sync (C-11)`,
      });

      proxy = await TcpProxy.start(a.port);
      client = new Centrifuge(proxy.wsUrl, {
        websocket: WebSocket,
        ...SDK_TEST_OPTIONS,
        token: userToken('rita', TOKEN_SECRET),
      });
      const states = record(client, ['connecting', 'connected', 'disconnected']);
      await connect(client);
      const sub = client.newSubscription(CH, { recoverable: true });
      const pubs = record(sub, ['publication']);
      const subscribed = record(sub, ['subscribed']);
      const subErrors = record(sub, ['error', 'unsubscribed']);
      await subscribe(sub);

      // The server API of Y publishes about 100/s; an answer with an error is not an
      // acknowledgement (the publication may or may not have been committed).
      const acks = []; // {offset, epoch, n}
      let refused = 0;
      let n = 0;
      publishing = true;
      publisher = (async () => {
        while (publishing) {
          const mine = ++n;
          try {
            const r = await y.api('publish', { channel: CH, data: { n: mine } });
            acks.push({ offset: r.offset, epoch: r.epoch, n: mine });
          } catch {
            refused++;
          }
          await new Promise((r) => setTimeout(r, 10)); // the rate, not a synchronisation
        }
      })();
      await eventually(() => acks.length >= 30 && pubs.length >= 20, {
        timeoutMs: 20000,
        message: '30 acknowledged, 20 delivered',
      });
      const epoch = subscribed[0].ctx.streamPosition?.epoch ?? acks[0].epoch;

      // The failover: cut, kill -9 the primary, the proxy to a surviving node, reconnects let
      // through while the map still names the dead primary.
      const acceptedBefore = proxy.accepted;
      proxy.down();
      await cluster.killNine(A);
      proxy.retarget(y.port);
      proxy.up();

      await eventually(
        async () => {
          const p = await cluster.partitionOn(y, CH);
          return p.primary === X && p.epoch > before.epoch;
        },
        { timeoutMs: 15000, message: `member ${X} promoted in Y's map` },
      );
      const promoted = await cluster.partitionOn(y, CH);
      assert.equal(promoted.lineage, before.lineage, 'promotion keeps the lineage');
      const atFailover = acks.length;
      await eventually(() => acks.length >= atFailover + 30, {
        timeoutMs: 20000,
        message: '30 acknowledged after the failover',
      });
      publishing = false;
      await publisher;

      const last = acks.at(-1).offset;
      await eventually(() => pubs.length > 0 && pubs.at(-1).ctx.offset >= last, {
        timeoutMs: 10000,
        message: `the SDK's stream reaching offset ${last}`,
        describe: () =>
          `subscribed ${JSON.stringify(subscribed.map((s) => s.ctx))} errors ${JSON.stringify(subErrors)} ` +
          `last ${pubs.at(-1)?.ctx.offset}`,
      });

      // The SDK went through the proxy to Y, and resubscribed once, recovering in the epoch.
      assert.ok(proxy.accepted > acceptedBefore, 'the SDK reconnected through the proxy');
      assert.equal(client.state, 'connected');
      assert.equal(subscribed.length, 2, `one resubscription: ${JSON.stringify(subscribed.map((s) => s.ctx))}`);
      const again = subscribed[1].ctx;
      assert.equal(again.wasRecovering, true);
      assert.equal(again.recovered, true, `recovered: ${JSON.stringify(again)}`);
      assert.equal(again.streamPosition?.epoch, epoch, 'the channel epoch is kept');
      assert.ok(
        states.some((s) => s.event === 'connecting'),
        'the SDK saw its connection lost',
      );

      // Every acknowledgement in the one epoch, offsets going up.
      let prev = 0;
      for (const ack of acks) {
        assert.equal(ack.epoch, epoch, `offset ${ack.offset}: the channel epoch is kept`);
        assert.ok(ack.offset > prev, `acknowledged offsets go up (${prev} then ${ack.offset})`);
        prev = ack.offset;
      }
      // A refused publish may have been committed before A died: at most those are extra.
      assert.ok(last <= acks.length + refused, `offsets skipped: last ${last}, ${acks.length} + ${refused}`);

      // The SDK's stream: 1..last, each once, in order; one payload per offset.
      const offsets = pubs.map((e) => e.ctx.offset);
      const want = Array.from({ length: last }, (_, i) => i + 1);
      assert.deepEqual(offsets, want, 'ordered, no duplicate, no gap');
      const byOffset = new Map(pubs.map((e) => [e.ctx.offset, e.ctx.data.n]));
      for (const ack of acks) {
        assert.equal(byOffset.get(ack.offset), ack.n, `acknowledged offset ${ack.offset} received with its data`);
      }
      assert.equal(sub.state, 'subscribed');
    } catch (err) {
      err.message += `\n${cluster.logs()}`;
      throw err;
    } finally {
      publishing = false;
      await publisher;
      client?.disconnect();
      await proxy?.close();
      await cluster.close();
    }
  });
});
