// The real centrifuge SDK (5.8.0, its browser bundle) inside headless Chromium pages against a
// real chorusd: connecting (anonymous, HS256, rejected and expired tokens, as
// node/connect.test.js; server-side subscriptions from the token, W-25), then channels between
// two pages (publish, presence, join/leave, history paging, client and server unsubscribe, as
// node/channels.test.js). The network scenarios (transport cut, node restart, slow reader) are
// in sdk_network.test.js.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET } from '../lib/harness.js';
import { sharedChromium, withBrowserNode } from '../lib/page_sdk.js';
import { assertHistoryPaging } from '../lib/scenarios.js';
import { hs256, invalidTokens, userToken } from '../lib/token.js';
import { eventually } from '../lib/wait.js';

const browser = sharedChromium();
const rejectedWith = (promise) =>
  promise.then(
    () => assert.fail('resolved'),
    (e) => e,
  );

describe('SDK in Chromium: connect', () => {
  test('client_insecure: connect without a token, anonymous, may subscribe, publish, see presence', () =>
    withBrowserNode(browser, { client: { client_insecure: true } }, async ({ open }) => {
      const page = await open();
      const c = await page.client();
      const ctx = await c.connect();
      assert.match(ctx.client, /\S/, 'a client id');
      assert.equal(ctx.transport, 'websocket');
      const s = await c.subscription('chat:anon');
      await s.subscribe();
      const reply = await s.publish({ text: 'hi' });
      assert.deepEqual(reply, {});
      await s.waitCount('publication', 1);
      const [pub] = await s.events('publication');
      assert.deepEqual([pub.ctx.data, pub.ctx.offset], [{ text: 'hi' }, 1]);
      const { clients } = await s.presence();
      assert.deepEqual(Object.keys(clients), [ctx.client]);
      assert.equal(clients[ctx.client].user, '');
    }));

  test('W-25: token channels: server-side subscriptions reach the client object', () =>
    withBrowserNode(browser, {}, async ({ node, open }) => {
      const page = await open();
      const exp = Math.floor(Date.now() / 1000) + 600;
      const c = await page.client({ token: hs256({ sub: 'sam', exp, channels: ['chat:srv'] }, TOKEN_SECRET) });
      await c.connect();
      await c.waitCount('subscribed', 1);
      const [sub] = await c.events('subscribed');
      assert.deepEqual([sub.ctx.channel, sub.ctx.recoverable], ['chat:srv', true]);
      for (let n = 1; n <= 2; n++) await node.api('publish', { channel: 'chat:srv', data: { n } });
      await c.waitCount('publication', 2);
      const pubs = await c.events('publication');
      assert.deepEqual(
        pubs.map((e) => [e.ctx.channel, e.ctx.offset, e.ctx.data.n]),
        [
          ['chat:srv', 1, 1],
          ['chat:srv', 2, 2],
        ],
      );
    }));

  test('HS256 token: user and info from the token (presence connInfo)', () =>
    withBrowserNode(browser, {}, async ({ open }) => {
      const page = await open();
      const c = await page.client({ token: userToken('alice', TOKEN_SECRET, { info: { name: 'Alice' } }) });
      const ctx = await c.connect();
      const s = await c.subscription('chat:tok');
      await s.subscribe();
      const { clients } = await s.presence();
      const { user, connInfo } = clients[ctx.client];
      assert.deepEqual({ user, connInfo }, { user: 'alice', connInfo: { name: 'Alice' } });
    }));

  test('W-13: no token, bad signature, alg none, garbage: disconnected 3500, no reconnect', () =>
    withBrowserNode(browser, {}, async ({ open }) => {
      const page = await open();
      const tokens = { noToken: undefined, ...invalidTokens('mallory') };
      for (const [name, token] of Object.entries(tokens)) {
        const c = await page.client(token === undefined ? {} : { token });
        const err = await rejectedWith(c.connect());
        assert.equal(err.code, 3500, `${name}: ${err.message}`);
        assert.equal(await c.state(), 'disconnected', `${name}: no reconnect`);
        assert.deepEqual(
          (await c.events()).filter((e) => e.event !== 'state').map((e) => e.event),
          ['connecting', 'disconnected'],
          `${name}: one attempt`,
        );
      }
    }));

  test('W-13: expired token: the SDK gets 109, calls getToken once and connects', () =>
    withBrowserNode(browser, {}, async ({ open }) => {
      const page = await open();
      const c = await page.client({
        token: userToken('bob', TOKEN_SECRET, { ttlS: -10 }),
        refreshTokens: [userToken('bob', TOKEN_SECRET)],
      });
      await c.connect();
      assert.equal(await c.tokenCalls(), 1, 'getToken called once');
      const errors = await c.events('error');
      assert.deepEqual(
        errors.map((e) => [e.ctx.type, e.ctx.error.code]),
        [['connect', 109]],
      );
      const s = await c.subscription('chat:exp');
      await s.subscribe();
      const { clients } = await s.presence();
      assert.deepEqual(Object.values(clients).map((i) => i.user), ['bob']);
    }));

  test('a token with exp in 2 s is refreshed over the connection: no reconnect', () =>
    withBrowserNode(browser, {}, async ({ open }) => {
      const page = await open();
      const exp = Math.floor(Date.now() / 1000) + 2;
      const c = await page.client({ token: hs256({ sub: 'carol', exp }, TOKEN_SECRET), refreshTokens: [userToken('carol', TOKEN_SECRET)] });
      await c.connect();
      await eventually(async () => (await c.tokenCalls()) === 1, { timeoutMs: 8000, message: 'getToken called to refresh' });
      await eventually(() => Date.now() / 1000 > exp + 1.5, { timeoutMs: 8000, message: 'expiry passed' });
      assert.equal(await c.state(), 'connected');
      assert.equal(await c.count('connecting'), 1, 'only the first connect');
    }));
});

describe('SDK in Chromium: channels', () => {
  test('two pages: client and API publish reach both once, in order; presence; join/leave', () =>
    withBrowserNode(browser, {}, async ({ node, open }) => {
      const [pageA, pageB] = [await open(), await open()];
      const a = await pageA.client({ user: 'alice' });
      const b = await pageB.client({ user: 'bob' });
      const [ca, cb] = [await a.connect(), await b.connect()];
      const sa = await a.subscription('chat:pair', { joinLeave: true });
      await sa.subscribe();
      // The node (as Centrifugo) also sends a subscriber its own join: not counted here.
      const others = async () =>
        (await sa.events())
          .filter((e) => (e.event === 'join' || e.event === 'leave') && e.ctx.info.client !== ca.client)
          .map((e) => [e.event, e.ctx.info.client, e.ctx.info.user]);
      const sb = await b.subscription('chat:pair');
      await sb.subscribe();
      await eventually(async () => (await others()).length === 1, { message: "bob's join at alice" });
      assert.deepEqual(await others(), [['join', cb.client, 'bob']]);

      await sa.publish({ text: 'one' });
      assert.equal((await node.api('publish', { channel: 'chat:pair', data: { text: 'two' } })).offset, 2);
      for (const s of [sa, sb]) {
        await s.waitCount('publication', 2);
        const pubs = (await s.events('publication')).map((e) => `${e.ctx.offset}:${e.ctx.data.text}:${e.ctx.info?.user ?? '-'}`);
        assert.deepEqual(pubs, ['1:one:alice', '2:two:-'], 'offset:text:publisher');
      }
      const { clients } = await sb.presence();
      assert.deepEqual(Object.keys(clients).sort(), [ca.client, cb.client].sort());
      assert.deepEqual([clients[ca.client].user, clients[cb.client].user], ['alice', 'bob']);
      assert.deepEqual(await sb.presenceStats(), { numClients: 2, numUsers: 2 });

      await sb.unsubscribe();
      await eventually(async () => (await others()).length === 2, { message: "bob's leave" });
      // A second bob in page B comes and goes by disconnecting.
      const b2 = await pageB.client({ user: 'bob' });
      const cb2 = await b2.connect();
      await (await b2.subscription('chat:pair')).subscribe();
      await eventually(async () => (await others()).length === 3, { message: "second bob's join" });
      assert.deepEqual(await sa.presenceStats(), { numClients: 2, numUsers: 2 });
      await b2.disconnect();
      await eventually(async () => (await others()).length === 4, { message: 'leave on disconnect' });
      assert.deepEqual((await others()).slice(1), [
        ['leave', cb.client, 'bob'],
        ['join', cb2.client, 'bob'],
        ['leave', cb2.client, 'bob'],
      ]);
      assert.deepEqual(await sa.presenceStats(), { numClients: 1, numUsers: 1 });
    }));

  test('history: limit, since, reverse, paging to the end, 112 for a bad position', () =>
    withBrowserNode(browser, {}, async ({ node, open }) => {
      for (let i = 1; i <= 10; i++) await node.api('publish', { channel: 'chat:h', data: { i } });
      const c = await (await open()).client({ user: 'alice' });
      await c.connect();
      const s = await c.subscription('chat:h');
      await s.subscribe();
      await assertHistoryPaging(s);
    }));

  // Without recovery in the namespace a resubscribe starts from "now" (as in channels.test.js).
  test('client unsubscribe: no more publications; resubscribe works', () =>
    withBrowserNode(browser, { namespaces: { plain: { presence: true, history_size: 10, history_ttl_ms: 60000 } } }, async ({ node, open }) => {
      const page = await open();
      const [c, other] = [await page.client({ user: 'alice' }), await page.client({ user: 'bob' })];
      await c.connect();
      await other.connect();
      const s = await c.subscription('plain:u');
      const so = await other.subscription('plain:u');
      await s.subscribe();
      await so.subscribe();
      const publish = (n) => node.api('publish', { channel: 'plain:u', data: { n } });
      await publish(1);
      await s.waitCount('publication', 1);
      await s.unsubscribe();
      await s.waitCount('unsubscribed', 1);
      assert.equal((await s.events('unsubscribed'))[0].ctx.code, 0, 'unsubscribe called');
      await eventually(async () => (await node.api('presence_stats', { channel: 'plain:u' })).num_clients === 1, {
        message: 'node saw the unsubscribe',
      });
      await publish(2);
      await so.waitCount('publication', 2);
      await s.subscribe();
      await publish(3);
      await so.waitCount('publication', 3);
      await s.waitCount('publication', 2);
      assert.deepEqual((await s.events('publication')).map((e) => e.ctx.data.n), [1, 3]);
    }));

  test('server unsubscribe (API): unsubscribed 2000, the connection stays', () =>
    withBrowserNode(browser, {}, async ({ node, open }) => {
      const c = await (await open()).client({ user: 'alice' });
      await c.connect();
      const s = await c.subscription('chat:su');
      await s.subscribe();
      await node.api('unsubscribe', { user: 'alice', channel: 'chat:su' });
      await s.waitCount('unsubscribed', 1);
      assert.equal((await s.events('unsubscribed'))[0].ctx.code, 2000);
      assert.equal(await s.state(), 'unsubscribed');
      assert.equal(await c.state(), 'connected');
      assert.equal((await node.api('presence_stats', { channel: 'chat:su' })).num_clients, 0);
      await node.api('publish', { channel: 'chat:su', data: { after: true } });
      // Nothing arrives after the unsubscribe: the next publication in another channel of the
      // same connection is seen first.
      const t = await c.subscription('chat:su2');
      await t.subscribe();
      await node.api('publish', { channel: 'chat:su2', data: { marker: 1 } });
      await t.waitCount('publication', 1);
      assert.equal(await s.count('publication'), 0);
    }));
});
