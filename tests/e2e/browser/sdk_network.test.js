// The real centrifuge SDK in headless Chromium when the network misbehaves, as
// node/recovery.test.js and node/slow.test.js do for Node.js: the page reaches chorusd through
// a TCP proxy in the test (lib/proxy.js) that cuts it, holds it down, or stops reading for it.
// A transport cut: the SDK recovers exactly the missed publications (recovered: true); a node
// restart (history lost): recovered: false; a stalled reader: closed as slow (3008), the other
// page unaffected.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { sharedChromium, withBrowserNode } from '../lib/page_sdk.js';
import { TcpProxy } from '../lib/proxy.js';
import { eventually } from '../lib/wait.js';

const browser = sharedChromium();
const CH = 'chat:rec';
const offsetsOf = async (s) => (await s.events('publication')).map((e) => [e.ctx.offset, e.ctx.data.n]);
const upTo = (n) => Array.from({ length: n }, (_, i) => [i + 1, i + 1]);

// A test body with a proxy to the node, closed whatever happens.
const withProxy = (body) => async (scope) => {
  const proxy = await TcpProxy.start(scope.node.port);
  try {
    await body({ ...scope, proxy });
  } finally {
    await proxy.close();
  }
};

describe('SDK in Chromium: network', () => {
  test('transport cut: the SDK reconnects through the proxy and recovers exactly the missed ones', () =>
    withBrowserNode(browser, {}, withProxy(async ({ node, open, proxy }) => {
      const c = await (await open()).client({ url: proxy.wsUrl, user: 'rita' });
      await c.connect();
      const s = await c.subscription(CH, { recoverable: true });
      const first = await s.subscribe();
      assert.equal(first.recoverable, true);
      let n = 0;
      const publishMore = async (k) => {
        while (k-- > 0) await node.api('publish', { channel: CH, data: { n: ++n } });
      };
      await publishMore(3);
      await s.waitCount('publication', 3);

      proxy.down(); // every socket cut, new ones refused until up()
      await c.waitCount('connecting', 2); // the first connect's, then the cut's
      assert.equal((await c.events('connecting'))[1].ctx.code, 1, 'transport closed');
      await publishMore(5); // missed while away
      assert.equal(await s.count('publication'), 3);
      proxy.up();

      await s.waitCount('subscribed', 2, { timeoutMs: 15000 });
      const resub = (await s.events('subscribed'))[1].ctx;
      assert.equal(resub.wasRecovering, true);
      assert.equal(resub.recovered, true);
      assert.equal(resub.streamPosition.epoch, first.streamPosition.epoch);
      await s.waitCount('publication', 8);
      await publishMore(1);
      await s.waitCount('publication', 9);
      assert.deepEqual(await offsetsOf(s), upTo(9), 'every offset once, in order');
      assert.equal(await c.count('connected'), 2, 'one reconnect');
    })));

  test('node restart (history lost): recovered:false, a new epoch, offsets restart', () =>
    withBrowserNode(browser, {}, async ({ node, open }) => {
      const c = await (await open()).client({ user: 'rita' });
      await c.connect();
      const s = await c.subscription(CH, { recoverable: true });
      const first = await s.subscribe();
      await node.api('publish', { channel: CH, data: { n: 1 } });
      await s.waitCount('publication', 1);

      await node.restart(); // clean stop (checked), same port, empty state; the page stays
      await s.waitCount('subscribed', 2, { timeoutMs: 20000 });
      const resub = (await s.events('subscribed'))[1].ctx;
      assert.equal(resub.wasRecovering, true);
      assert.equal(resub.recovered, false, 'the node cannot know what was missed');
      assert.notEqual(resub.streamPosition.epoch, first.streamPosition.epoch, 'a new epoch');
      await node.api('publish', { channel: CH, data: { n: 2 } });
      await s.waitCount('publication', 2);
      assert.deepEqual(await offsetsOf(s), [
        [1, 1],
        [1, 2],
      ]);
      assert.equal(await s.state(), 'subscribed');
    }));

  // W-24 as node/slow.test.js: the proxy stops reading from chorusd for the slow page, so the
  // kernel buffers fill and the node's queue for it passes client.max_queue_bytes.
  test('W-24: a stalled page is closed as slow (3008), the other page gets everything', () =>
    withBrowserNode(
      browser,
      {
        client: { max_queue_bytes: 262144 },
        limits: { max_publication_bytes: 65536 },
        namespaces: { slow: { history_size: 5000, history_ttl_ms: 600000, allow_recovery: true } },
      },
      withProxy(async ({ node, open, proxy }) => {
        const slow = await (await open()).client({ url: proxy.wsUrl, user: 'slowpoke' });
        const fast = await (await open()).client({ user: 'speedy' });
        await slow.connect();
        await fast.connect();
        const ss = await slow.subscription('slow:feed', { recoverable: true });
        const fs = await fast.subscription('slow:feed');
        const first = await ss.subscribe();
        await fs.subscribe();

        proxy.pause();
        const slowCount = () => node.metric('chorus_disconnects_total{code="3008"}');
        const pad = 'x'.repeat(60000);
        let n = 0;
        while (n < 2000 && (await slowCount()) === 0) {
          for (let i = 0; i < 20; i++) await node.api('publish', { channel: 'slow:feed', data: { n: ++n, pad } });
        }
        assert.equal(await slowCount(), 1, `node closed the stalled page as slow after ${n} publications`);
        await fs.waitCount('publication', n, { timeoutMs: 20000 });
        const fastSeen = (await fs.events('publication')).map((e) => [e.ctx.data.n, e.ctx.data.pad]);
        assert.deepEqual(fastSeen, Array.from({ length: n }, (_, i) => [i + 1, 60000]), 'the other page: all, once, in order');
        assert.equal(await fast.count('connected'), 1, 'the other page never reconnected');
        assert.equal(await ss.count('publication'), 0, 'nothing reached the stalled page');

        proxy.resume();
        await slow.waitCount('connecting', 2, { timeoutMs: 15000 });
        // With the close frame stuck behind the full buffers Chromium may see a clean close
        // (3008) or only the TCP close (the SDK's code 1, transport closed).
        const code = (await slow.events('connecting'))[1].ctx.code;
        assert.ok(code === 3008 || code === 1, `close seen as 3008 or a transport close, got ${code}`);
        const got = await offsetsOf(ss);
        assert.ok(got.length < n, `the stalled page got ${got.length} of ${n} before the close`);
        assert.deepEqual(got, upTo(got.length), 'what it got before the close: a prefix, in order');
        await ss.waitCount('subscribed', 2, { timeoutMs: 15000 });
        const resub = (await ss.events('subscribed'))[1].ctx;
        assert.equal(resub.wasRecovering, true);
        assert.equal(resub.streamPosition.epoch, first.streamPosition.epoch, 'same stream');
        assert.equal(resub.streamPosition.offset, n, 'the reply tells the top of the stream');
        // Catching up from its position: by recovery when the node sends it, else (recovered:
        // false, the reply being bounded by max_queue_bytes) from history in small pages.
        let seen;
        if (resub.recovered) {
          await ss.waitCount('publication', n, { timeoutMs: 20000 });
          seen = await offsetsOf(ss);
        } else {
          seen = [...got];
          while (seen.length < n) {
            const page = await ss.history({ limit: 3, since: { offset: seen.length, epoch: first.streamPosition.epoch } });
            assert.ok(page.publications.length > 0, `history after ${seen.length}`);
            seen.push(...page.publications.map((p) => [p.offset, p.data.n]));
          }
        }
        assert.deepEqual(seen, upTo(n), 'the stalled page caught up: every publication once, in order');
        console.log(`browser slow client: closed after ${n} publications of 60 kB; SDK close code ${code}; ` +
          `${got.length} delivered before; recovered: ${resub.recovered}`);
      }),
    ));
});
