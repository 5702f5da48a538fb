// Server-side subscriptions (W-25): the connection token's `channels` claim subscribes the
// connection at connect, with the real centrifuge SDK (its client-level 'subscribed',
// 'publication', 'join', 'unsubscribed' events) and by hand on the wire: the connect reply's
// `subs`, recovery through connect `subs` after a transport loss, recovered:false after a node
// restart, refusal of a token naming an unknown channel, and the commands a client may not
// send for a server-side channel; and the server API `send` (message pushes).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET, connect, gatedWebSocket, withNode } from '../lib/harness.js';
import { rawConnect } from '../lib/raw.js';
import { hs256 } from '../lib/token.js';
import { eventually, record, waitEvent } from '../lib/wait.js';

// `feed` does not let clients subscribe by themselves: only a token's `channels` can.
const CONFIG = {
  namespaces: {
    feed: {
      presence: true,
      join_leave: true,
      history_size: 100,
      history_ttl_ms: 300000,
      allow_recovery: true,
      allow_subscribe_for_client: false,
    },
  },
};

function channelsToken(user, channels) {
  const now = Math.floor(Date.now() / 1000);
  return hs256({ sub: user, exp: now + 3600, channels }, TOKEN_SECRET);
}

// The client-level events of server-side channels, recorded.
function serverSideEvents(c) {
  return record(c, ['subscribed', 'publication', 'join', 'leave', 'unsubscribed']);
}
const of = (events, name, channel) =>
  events.filter((e) => e.event === name && (channel === undefined || e.ctx.channel === channel));

describe('server-side subscriptions', () => {
  test('W-25: token channels are subscribed at connect; pubs, join, presence, server unsubscribe', () =>
    withNode(CONFIG, async ({ client, node }) => {
      const a = client({ token: channelsToken('ann', ['feed:news', 'feed:$ann']) });
      const ev = serverSideEvents(a);
      await connect(a);
      await eventually(() => of(ev, 'subscribed').length === 2, { message: 'two server-side subscriptions' });
      const news = of(ev, 'subscribed', 'feed:news')[0].ctx;
      assert.equal(news.recoverable, true);
      assert.equal(news.positioned, true);
      assert.match(news.streamPosition.epoch, /\S/);
      assert.equal(of(ev, 'subscribed', 'feed:$ann').length, 1, 'a $ channel granted by the token');

      for (let n = 1; n <= 3; n++) await node.api('publish', { channel: 'feed:news', data: { n } });
      await eventually(() => of(ev, 'publication', 'feed:news').length === 3, { message: '3 publications' });
      assert.deepEqual(
        of(ev, 'publication', 'feed:news').map((e) => [e.ctx.offset, e.ctx.data.n]),
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
      );

      const b = client({ token: channelsToken('bob', ['feed:news']) });
      await connect(b);
      await eventually(() => of(ev, 'join', 'feed:news').some((e) => e.ctx.info.user === 'bob'), {
        message: "bob's join seen by ann",
      });
      const presence = await a.presence('feed:news');
      assert.deepEqual(Object.values(presence.clients).map((i) => i.user).sort(), ['ann', 'bob']);
      assert.deepEqual(await a.presenceStats('feed:news'), { numClients: 2, numUsers: 1 + 1 });
      b.disconnect();
      await eventually(() => of(ev, 'leave', 'feed:news').some((e) => e.ctx.info.user === 'bob'), {
        message: "bob's leave seen by ann",
      });

      await node.api('unsubscribe', { user: 'ann', channel: 'feed:news' });
      await eventually(() => of(ev, 'unsubscribed', 'feed:news').length === 1, { message: 'unsubscribed event' });
      await node.api('publish', { channel: 'feed:news', data: { n: 4 } });
      await node.api('publish', { channel: 'feed:$ann', data: { n: 1 } });
      await eventually(() => of(ev, 'publication', 'feed:$ann').length === 1, { message: 'still on feed:$ann' });
      assert.equal(of(ev, 'publication', 'feed:news').length, 3, 'nothing after the unsubscribe');
    }));

  test('W-25: transport lost: the SDK recovers its server-side channel exactly; restart: recovered false', () =>
    withNode(CONFIG, async ({ client, node }) => {
      const net = gatedWebSocket();
      const c = client({ token: channelsToken('rita', ['feed:rec']), websocket: net.WebSocket });
      const ev = serverSideEvents(c);
      await connect(c);
      let n = 0;
      const publish = () => node.api('publish', { channel: 'feed:rec', data: { n: ++n } });
      for (let i = 0; i < 3; i++) await publish();
      await eventually(() => of(ev, 'publication').length === 3, { message: '3 live publications' });

      net.down();
      await waitEvent(c, 'connecting');
      for (let i = 0; i < 5; i++) await publish(); // missed while away
      net.up();
      await eventually(() => of(ev, 'subscribed').length === 2, { timeoutMs: 10000, message: 'reconnected' });
      const again = of(ev, 'subscribed')[1].ctx;
      assert.equal(again.wasRecovering, true);
      assert.equal(again.recovered, true);
      await publish();
      await eventually(() => of(ev, 'publication').length === 9, { message: '9 publications' });
      assert.deepEqual(
        of(ev, 'publication').map((e) => e.ctx.offset),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        'every offset once, in order',
      );

      await node.restart(); // history gone: a new epoch
      await eventually(() => of(ev, 'subscribed').length === 3, { timeoutMs: 15000, message: 'after restart' });
      const fresh = of(ev, 'subscribed')[2].ctx;
      assert.equal(fresh.wasRecovering, true);
      assert.equal(fresh.recovered, false);
    }));

  test('W-25: server API subscribe: a subscribe push, then publications and presence, for this connection', () =>
    withNode(CONFIG, async ({ client, node }) => {
      const net = gatedWebSocket();
      const c = client({ token: channelsToken('dan', []), websocket: net.WebSocket });
      const ev = serverSideEvents(c);
      const connected = await connect(c);
      for (let n = 1; n <= 2; n++) await node.api('publish', { channel: 'feed:api', data: { n } });
      const top = await node.api('history', { channel: 'feed:api', limit: 0 });
      await node.api('subscribe', { user: 'dan', channel: 'feed:api', recover_since: { offset: 1, epoch: top.epoch } });
      await eventually(() => of(ev, 'subscribed', 'feed:api').length === 1, { message: 'subscribe push' });
      const sub = of(ev, 'subscribed', 'feed:api')[0].ctx;
      assert.equal(sub.recoverable, true);
      assert.equal(sub.streamPosition.offset, 2);
      const presence = await node.api('presence', { channel: 'feed:api' });
      assert.deepEqual(Object.keys(presence.presence), [connected.client]);
      // Subscribing again changes nothing; an unknown namespace is 102.
      await node.api('subscribe', { user: 'dan', channel: 'feed:api' });
      await assert.rejects(node.api('subscribe', { user: 'dan', channel: 'nowhere:x' }), (e) => e.code === 102);

      await node.api('publish', { channel: 'feed:api', data: { n: 3 } });
      await eventually(() => of(ev, 'publication', 'feed:api').length === 1, { message: 'live publication' });
      // It lasts for this connection only (as in Centrifugo): after a reconnect the token's
      // channels are all there is, and the SDK reports the channel unsubscribed.
      net.down();
      await waitEvent(c, 'connecting');
      net.up();
      await eventually(() => of(ev, 'unsubscribed', 'feed:api').length === 1, { timeoutMs: 10000, message: 'gone' });
      assert.equal(c.state, 'connected');
      const after = await node.api('presence', { channel: 'feed:api' });
      assert.deepEqual(after.presence, {});
    }));

  test('server API send: the SDK emits message events', () =>
    withNode(CONFIG, async ({ client, node }) => {
      const c = client({ token: channelsToken('mia', []) });
      const messages = record(c, ['message']);
      await connect(c);
      await node.api('send', { user: 'mia', data: { text: 'hello' } });
      await node.api('send', { user: 'mia', data: [2] });
      await eventually(() => messages.length === 2, { message: 'two messages' });
      assert.deepEqual(
        messages.map((e) => e.ctx.data),
        [{ text: 'hello' }, [2]],
      );
    }));

  test('W-25: a token naming a channel of no namespace is refused with 3500', () =>
    withNode(CONFIG, async ({ client }) => {
      const c = client({ token: channelsToken('eve', ['feed:ok', 'nowhere:x']) });
      const err = await connect(c).then(
        () => null,
        (e) => e,
      );
      assert.ok(err, 'connect refused');
      assert.equal(err.code, 3500);
    }));

  test('W-25 on the wire: connect subs, recover through connect subs, 105 and 103', () =>
    withNode(CONFIG, async ({ node }) => {
      for (let n = 1; n <= 4; n++) await node.api('publish', { channel: 'feed:w', data: { n } });
      const first = await rawConnect(node);
      first.ws.send(JSON.stringify({ id: 1, connect: { token: channelsToken('wire', ['feed:w', 'chat:w']) } }));
      const subs = (await first.reply(1)).connect.subs;
      assert.deepEqual(Object.keys(subs), ['feed:w', 'chat:w'], 'in claim order');
      assert.deepEqual(subs['chat:w'], { recoverable: true, positioned: true, epoch: subs['chat:w'].epoch });
      const sub = subs['feed:w'];
      assert.equal(sub.recoverable, true);
      assert.equal(sub.positioned, true);
      assert.equal(sub.offset, 4);
      const epoch = sub.epoch;
      assert.match(epoch, /\S/);
      first.ws.send(
        [
          JSON.stringify({ id: 2, subscribe: { channel: 'chat:w' } }),
          JSON.stringify({ id: 3, subscribe: { channel: 'feed:w' } }),
          JSON.stringify({ id: 4, unsubscribe: { channel: 'chat:w' } }),
        ].join('\n'),
      );
      assert.equal((await first.reply(2)).error.code, 105, 'already subscribed (server-side)');
      assert.equal((await first.reply(3)).error.code, 103, 'the namespace refuses client subscribes');
      assert.equal((await first.reply(4)).error.code, 103, 'a client may not unsubscribe it');
      first.ws.close();

      const second = await rawConnect(node);
      second.ws.send(
        JSON.stringify({
          id: 1,
          connect: {
            token: channelsToken('wire', ['feed:w']),
            subs: { 'feed:w': { recover: true, epoch, offset: 2 }, 'feed:other': { recover: true } },
          },
        }),
      );
      const connected = (await second.reply(1)).connect;
      assert.deepEqual(Object.keys(connected.subs), ['feed:w'], 'only the token decides the channels');
      const rec = connected.subs['feed:w'];
      assert.equal(rec.recovered, true);
      assert.equal(rec.was_recovering, true);
      assert.deepEqual(
        rec.publications.map((p) => [p.offset, p.data.n]),
        [
          [3, 3],
          [4, 4],
        ],
      );
      second.ws.close();
    }));
});
