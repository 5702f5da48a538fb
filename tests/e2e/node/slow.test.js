// Back-pressure (BRIEF "Back-pressure", W-24): a client that stops reading is disconnected as
// slow (3008) once more than client.max_queue_bytes wait for it, without holding anyone else up,
// and catches up from its position after reconnecting: every publication once, in order. The
// catch-up is the SDK's recovery when the node can send it (recovered: true), else the node
// says recovered: false (a recovery reply is bounded by client.max_queue_bytes, like any other
// message) and the app pages history from its last offset, in pages small enough to pass.
// "Stops reading" = the SDK's socket is paused (net.Socket.pause()), so the kernel buffers fill
// and the node's queue for that connection grows.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET, connect, gatedWebSocket, subscribe, withNode } from '../lib/harness.js';
import { userToken } from '../lib/token.js';
import { eventually, record } from '../lib/wait.js';

const CONFIG = {
  client: { max_queue_bytes: 262144 },
  limits: { max_publication_bytes: 65536 },
  namespaces: {
    slow: { history_size: 5000, history_ttl_ms: 600000, allow_recovery: true },
  },
};
const BIG = 'x'.repeat(60000);
const MAX_PUBLISHES = 4000; // ~240 MB: far more than loopback socket buffers hold

describe('slow client', () => {
  test('W-24: paused reader closed as slow (3008), others unaffected, catches up from its position', () =>
    withNode(CONFIG, async ({ client, node }) => {
      const net = gatedWebSocket();
      const slow = client({ token: userToken('slowpoke', TOKEN_SECRET), websocket: net.WebSocket });
      const fast = client({ token: userToken('speedy', TOKEN_SECRET) });
      await Promise.all([connect(slow), connect(fast)]);
      const ss = slow.newSubscription('slow:feed', { recoverable: true });
      const fs = fast.newSubscription('slow:feed');
      const slowPubs = record(ss, ['publication']);
      const fastPubs = record(fs, ['publication']);
      const slowSubscribed = record(ss, ['subscribed']);
      const pubsAtSubscribed = []; // how many publications had arrived at each 'subscribed'
      ss.on('subscribed', () => pubsAtSubscribed.push(slowPubs.length));
      const reconnects = record(slow, ['connecting']);
      await Promise.all([subscribe(ss), subscribe(fs)]);

      const [socket] = [...net.sockets];
      socket._socket.pause(); // the SDK stops reading; the node keeps writing
      const slowCount = () => node.metric('chorus_disconnects_total{code="3008"}');
      let n = 0;
      while (n < MAX_PUBLISHES && (await slowCount()) === 0) {
        for (let i = 0; i < 20; i++) await node.api('publish', { channel: 'slow:feed', data: { n: ++n, pad: BIG } });
      }
      assert.ok((await slowCount()) >= 1, `node closed the paused client as slow after ${n} publications`);
      // The other subscriber got everything meanwhile.
      await eventually(() => fastPubs.length === n, { timeoutMs: 20000, message: `fast subscriber got ${n}` });

      socket._socket.resume();
      await eventually(() => reconnects.length >= 1, { timeoutMs: 10000, message: 'SDK noticed the close' });
      // With the close frame stuck behind the full buffer the SDK may see only the TCP close.
      const code = reconnects[0].ctx.code;
      assert.ok(code === 3008 || code < 100, `close seen as 3008 or as a transport close, got ${code}`);
      await eventually(() => slowSubscribed.length === 2, { timeoutMs: 15000, message: 'resubscribed' });
      const resub = slowSubscribed[1].ctx;
      assert.equal(resub.wasRecovering, true);
      const epoch = slowSubscribed[0].ctx.streamPosition.epoch;
      assert.equal(resub.streamPosition.epoch, epoch, 'same stream: its position is still valid');
      let seen;
      if (resub.recovered) {
        await eventually(() => slowPubs.length === n, { timeoutMs: 20000, message: `recovered up to ${n}` });
        seen = slowPubs.map((e) => e.ctx.data.n);
      } else {
        // Received before the close, then history from there to the reply's top, then live.
        const before = slowPubs.slice(0, pubsAtSubscribed[1]).map((e) => e.ctx.data.n);
        const top = resub.streamPosition.offset;
        const gap = [];
        let since = { offset: before.length ? before.at(-1) : 0, epoch };
        while (since.offset < top) {
          const page = await ss.history({ limit: 3, since });
          assert.ok(page.publications.length > 0, `history from ${since.offset} to ${top}`);
          for (const p of page.publications) if (p.offset <= top) gap.push(p.data.n);
          since = { offset: page.publications.at(-1).offset, epoch };
        }
        const live = slowPubs.slice(pubsAtSubscribed[1]).map((e) => e.ctx.data.n);
        seen = [...before, ...gap, ...live];
        console.log(`# slow client: recovered:false; caught up from offset ${before.at(-1)} to ${top} by history`);
      }
      assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i + 1), 'every publication once, in order');
      console.log(`# slow client: closed after ${n} publications of 60 kB; close code seen by the SDK: ${code}`);
    }));
});
