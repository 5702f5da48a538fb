// Back-pressure (BRIEF "Back-pressure"): a client that stops reading is disconnected as slow
// (3008) once more than client.max_queue_bytes wait for it, without holding anyone else up, and
// the SDK catches up from its position after reconnecting: every publication once, in order.
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
  test('paused reader: closed as slow (3008), others unaffected, recovers after reconnect', () =>
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
      assert.equal(slowSubscribed[1].ctx.recovered, true, 'recovered from its position');
      await eventually(() => slowPubs.length === n, { timeoutMs: 20000, message: `slow subscriber caught up to ${n}` });
      assert.deepEqual(
        slowPubs.map((e) => e.ctx.data.n),
        Array.from({ length: n }, (_, i) => i + 1),
        'every publication once, in order',
      );
      console.log(`# slow client: closed after ${n} publications of 60 kB; close code seen by the SDK: ${code}`);
    }));
});
