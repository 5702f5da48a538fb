// Reconnect and recovery with the real centrifuge SDK: after a transport loss or a server
// disconnect the SDK resubscribes with its position and gets exactly the missed publications,
// none twice, also while publications keep coming during the switch; after a node restart
// (history lost: a new epoch) it is told recovered:false.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET, connect, gatedWebSocket, subscribe, withNode } from '../lib/harness.js';
import { userToken } from '../lib/token.js';
import { eventually, record, waitEvent } from '../lib/wait.js';

const CH = 'chat:rec';

// Offsets must be 1..n exactly, once each, in order.
function assertContiguous(pubs, n, what) {
  const offsets = pubs.map((e) => e.ctx.offset);
  const expected = Array.from({ length: n }, (_, i) => i + 1);
  assert.deepEqual(offsets, expected, `${what}: every offset once, in order`);
  assert.deepEqual(
    pubs.map((e) => e.ctx.data.n),
    expected,
    `${what}: data matches offsets`,
  );
}

async function subscribedClient(client, net) {
  const c = client({ token: userToken('rita', TOKEN_SECRET), websocket: net.WebSocket });
  await connect(c);
  const s = c.newSubscription(CH, { recoverable: true });
  const pubs = record(s, ['publication']);
  const subscribed = record(s, ['subscribed']);
  await subscribe(s);
  return { c, s, pubs, subscribed };
}

describe('recovery', () => {
  test('transport lost: the missed publications are recovered, exactly', () =>
    withNode({}, async ({ client, node }) => {
      const net = gatedWebSocket();
      const { c, pubs, subscribed } = await subscribedClient(client, net);
      let n = 0;
      const publish = () => node.api('publish', { channel: CH, data: { n: ++n } });
      for (let i = 0; i < 3; i++) await publish();
      await eventually(() => pubs.length === 3, { message: '3 live publications' });

      net.down();
      await waitEvent(c, 'connecting', { filter: () => true });
      for (let i = 0; i < 5; i++) await publish(); // missed while away
      net.up();

      await eventually(() => subscribed.length === 2, { timeoutMs: 10000, message: 'resubscribed' });
      const ctx = subscribed[1].ctx;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, true);
      await eventually(() => pubs.length === 8, { message: '8 publications' });
      await publish();
      await eventually(() => pubs.length === 9, { message: 'live again' });
      assertContiguous(pubs, 9, 'after recovery');
    }));

  test('server disconnect with a reconnect code, publishing all the while: no gap, no duplicate', () =>
    withNode({}, async ({ client, node }) => {
      const net = gatedWebSocket();
      const { c, pubs, subscribed } = await subscribedClient(client, net);
      let n = 0;
      let publishing = true;
      // Paced at most ~200/s so a reconnect misses far fewer than the node's recovery cap of
      // 1,000 publications (past it the answer is recovered:false by design). Pacing is load
      // shaping, not synchronisation: every wait below is on a condition.
      const publisher = (async () => {
        while (publishing) {
          await node.api('publish', { channel: CH, data: { n: ++n } });
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      try {
        await eventually(() => pubs.length >= 20, { message: '20 live publications' });
        for (let round = 0; round < 3; round++) {
          const before = subscribed.length;
          const disconnected = waitEvent(c, 'connecting');
          await node.api('disconnect', { user: 'rita', disconnect: { code: 3100, reason: 'test reconnect' } });
          const why = await disconnected;
          assert.equal(why.code, 3100);
          await eventually(() => subscribed.length === before + 1, { timeoutMs: 10000, message: 'resubscribed' });
          assert.equal(subscribed.at(-1).ctx.recovered, true, `round ${round}: recovered; ${JSON.stringify(subscribed.at(-1).ctx)} after ${pubs.at(-1)?.ctx.offset}`);
          const seen = pubs.length;
          await eventually(() => pubs.length >= seen + 10, { message: 'live after the switch' });
        }
      } finally {
        publishing = false;
        await publisher;
      }
      await eventually(() => pubs.length === n, { message: `all ${n} publications` });
      assertContiguous(pubs, n, 'three reconnects under load');
    }));

  test('node restart (history lost): recovered:false, then live again', () =>
    withNode({}, async ({ client, node }) => {
      const net = gatedWebSocket();
      const { c, s, pubs, subscribed } = await subscribedClient(client, net);
      await node.api('publish', { channel: CH, data: { n: 1 } });
      await eventually(() => pubs.length === 1);
      const oldEpoch = subscribed[0].ctx.streamPosition?.epoch;

      const lost = waitEvent(c, 'connecting');
      await node.restart(); // clean stop (checked), same port, empty state
      await lost;
      await eventually(() => subscribed.length === 2, { timeoutMs: 15000, message: 'resubscribed after restart' });
      const ctx = subscribed[1].ctx;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, false, 'the node cannot know what was missed');
      assert.notEqual(ctx.streamPosition?.epoch, oldEpoch, 'a new epoch');
      await node.api('publish', { channel: CH, data: { n: 2 } });
      await eventually(() => pubs.length === 2);
      assert.equal(pubs[1].ctx.offset, 1, 'offsets restart in the new epoch');
      assert.equal(s.state, 'subscribed');
    }));
});
