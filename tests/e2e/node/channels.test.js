// Channels with the real centrifuge SDK: subscribe, publish, receive, presence and
// presence_stats, join/leave pushes, history paging, unsubscribe, the Chorus rpc extras and
// @chorus/client's user-level presence.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ChorusClient } from '@chorus/client';
import WebSocket from 'ws';

import { TOKEN_SECRET, connect, subscribe, withNode } from '../lib/harness.js';
import { assertHistoryPaging } from '../lib/scenarios.js';
import { userToken } from '../lib/token.js';
import { eventually, record, waitEvent } from '../lib/wait.js';

const asUser = (user, extra = {}) => ({ token: userToken(user, TOKEN_SECRET), ...extra });

describe('channels', () => {
  test('publish from a client and from the API reaches every subscriber once, in order', () =>
    withNode({}, async ({ client, node }) => {
      const a = client(asUser('alice'));
      const b = client(asUser('bob'));
      await Promise.all([connect(a), connect(b)]);
      const sa = a.newSubscription('chat:room');
      const sb = b.newSubscription('chat:room');
      await Promise.all([subscribe(sa), subscribe(sb)]);
      const got = record(sb, ['publication']);
      await sa.publish({ text: 'one' });
      const api = await node.api('publish', { channel: 'chat:room', data: { text: 'two' } });
      assert.equal(api.offset, 2);
      assert.match(api.epoch, /\S/);
      await eventually(() => got.length >= 2, { message: '2 publications' });
      assert.deepEqual(
        got.map((e) => [e.ctx.data.text, e.ctx.offset, e.ctx.info?.user]),
        [
          ['one', 1, 'alice'],
          ['two', 2, undefined],
        ],
      );
      await node.api('publish', { channel: 'chat:room', data: { text: 'three' } });
      await eventually(() => got.length >= 3);
      assert.equal(got.length, 3);
    }));

  test('client publish refused where not allowed (103); unknown namespace (102)', () =>
    withNode({ namespaces: { ro: { history_size: 10, history_ttl_ms: 60000 } } }, async ({ client }) => {
      const c = client(asUser('alice'));
      await connect(c);
      const s = c.newSubscription('ro:news');
      await subscribe(s);
      await assert.rejects(s.publish({ x: 1 }), (e) => e.code === 103);
      const unknown = c.newSubscription('nope:x');
      const ended = waitEvent(unknown, 'unsubscribed');
      unknown.subscribe();
      assert.equal((await ended).code, 102, 'unknown namespace: 102');
    }));

  test('presence, presence_stats and join/leave pushes', () =>
    withNode({}, async ({ client }) => {
      const a = client(asUser('alice'));
      const a2 = client(asUser('alice'));
      const b = client(asUser('bob'));
      const [ca, ca2, cb] = await Promise.all([connect(a), connect(a2), connect(b)]);
      const sa = a.newSubscription('chat:p', { joinLeave: true });
      await subscribe(sa);
      const all = record(sa, ['join', 'leave']);
      // The node (as Centrifugo) also sends a subscriber its own join: not counted here.
      const others = () => all.filter((e) => e.ctx.info.client !== ca.client);
      const sb = b.newSubscription('chat:p');
      const sa2 = a2.newSubscription('chat:p');
      await subscribe(sb);
      await subscribe(sa2);
      await eventually(() => others().length >= 2, { message: '2 joins', describe: () => JSON.stringify(all) });
      assert.deepEqual(
        others().map((e) => [e.event, e.ctx.info.client, e.ctx.info.user]),
        [
          ['join', cb.client, 'bob'],
          ['join', ca2.client, 'alice'],
        ],
      );
      const { clients } = await sa.presence();
      assert.deepEqual(Object.keys(clients).sort(), [ca.client, ca2.client, cb.client].sort());
      assert.equal(clients[cb.client].user, 'bob');
      assert.deepEqual(await sa.presenceStats(), { numClients: 3, numUsers: 2 });
      sb.unsubscribe();
      await eventually(() => others().length >= 3, { message: 'leave' });
      assert.deepEqual([others()[2].event, others()[2].ctx.info.client], ['leave', cb.client]);
      b.disconnect();
      a2.disconnect();
      await eventually(() => others().length >= 4, { message: 'leave on disconnect' });
      assert.deepEqual([others()[3].event, others()[3].ctx.info.client], ['leave', ca2.client]);
      assert.deepEqual(await sa.presenceStats(), { numClients: 1, numUsers: 1 });
    }));

  test('history: limit, since, reverse, position only, and the error for a bad position', () =>
    withNode({}, async ({ client, node }) => {
      for (let i = 1; i <= 10; i++) await node.api('publish', { channel: 'chat:h', data: { i } });
      const c = client(asUser('alice'));
      await connect(c);
      const s = c.newSubscription('chat:h');
      await subscribe(s);
      await assertHistoryPaging(s);
    }));

  // A namespace with history but without recovery: a resubscribe starts from "now" (with
  // recovery the SDK keeps its position across unsubscribe/subscribe and recovers the gap).
  test('unsubscribe: no more publications; resubscribe works', () =>
    withNode({ namespaces: { plain: { presence: true, history_size: 10, history_ttl_ms: 60000 } } }, async ({ client, node }) => {
      const c = client(asUser('alice'));
      const other = client(asUser('bob'));
      await Promise.all([connect(c), connect(other)]);
      const s = c.newSubscription('plain:u');
      const so = other.newSubscription('plain:u');
      await Promise.all([subscribe(s), subscribe(so)]);
      const got = record(s, ['publication']);
      const otherGot = record(so, ['publication']);
      await node.api('publish', { channel: 'plain:u', data: { n: 1 } });
      await eventually(() => got.length === 1);
      const unsub = waitEvent(s, 'unsubscribed');
      s.unsubscribe();
      await unsub;
      await eventually(async () => (await node.api('presence_stats', { channel: 'plain:u' })).num_clients === 1, {
        message: 'node saw the unsubscribe',
      });
      await node.api('publish', { channel: 'plain:u', data: { n: 2 } });
      await eventually(() => otherGot.length === 2, { message: 'the other subscriber got n=2' });
      await subscribe(s);
      await node.api('publish', { channel: 'plain:u', data: { n: 3 } });
      await eventually(() => otherGot.length === 3, { message: 'the other subscriber got n=3' });
      await eventually(() => got.length >= 2, {
        message: 'publication after resubscribe',
        describe: () => JSON.stringify(got.map((e) => e.ctx.data)),
      });
      assert.deepEqual(got.map((e) => e.ctx.data.n), [1, 3]);
    }));

  test('server unsubscribe (API) ends the subscription with a push', () =>
    withNode({}, async ({ client, node }) => {
      const c = client(asUser('alice'));
      await connect(c);
      const s = c.newSubscription('chat:su');
      await subscribe(s);
      const ended = waitEvent(s, 'unsubscribed');
      await node.api('unsubscribe', { user: 'alice', channel: 'chat:su' });
      const ctx = await ended;
      assert.equal(ctx.code, 2000);
      assert.equal(c.state, 'connected');
    }));

  test('rpc chorus.presence_page pages every connection once; chorus.presence_users', () =>
    withNode({ namespaces: { chat: { presence_page_size: 3 } } }, async ({ client }) => {
      const ids = [];
      const subs = [];
      for (let i = 0; i < 7; i++) {
        const c = client(asUser(`u${i % 4}`));
        ids.push((await connect(c)).client);
        const s = c.newSubscription('chat:pg');
        await subscribe(s);
        subs.push(s);
      }
      const first = client(asUser('reader'));
      await connect(first);
      const reader = ChorusClient.wrap(first);
      const page = await reader.presencePage('chat:pg', { limit: 2 });
      assert.equal(Object.keys(page.presence).length, 2);
      assert.notEqual(page.nextCursor, '');
      const capped = await reader.presencePage('chat:pg', { limit: 100 });
      assert.equal(Object.keys(capped.presence).length, 3, 'capped at presence_page_size');
      const { presence } = await reader.presenceAll('chat:pg', { limit: 2 });
      assert.deepEqual(Object.keys(presence).sort(), [...ids].sort());
      for (const id of ids) assert.match(presence[id].user, /^u[0-3]$/);
      const users = await reader.presenceUsers('chat:pg');
      assert.equal(users.numUsers, 4);
      assert.deepEqual([...users.users].sort(), ['u0', 'u1', 'u2', 'u3']);
    }));

  test('@chorus/client userSubscription: user joins and leaves, not connections', () =>
    withNode({}, async ({ node }) => {
      const mk = (user) =>
        new ChorusClient(node.wsUrl, { websocket: WebSocket, token: userToken(user, TOKEN_SECRET), minReconnectDelay: 50 });
      const watcher = mk('watcher');
      const alice1 = mk('alice');
      const alice2 = mk('alice');
      const all = [watcher, alice1, alice2];
      try {
        const room = watcher.userSubscription('chat:users');
        const log = [];
        room.on('userJoin', (e) => log.push(`+${e.user}`));
        room.on('userLeave', (e) => log.push(`-${e.user}`));
        room.subscribe();
        watcher.connect();
        assert.deepEqual(await room.whenSynced(5000), ['watcher']);
        for (const c of [alice1, alice2]) {
          const s = c.centrifuge.newSubscription('chat:users');
          s.subscribe();
          c.connect();
          await waitEvent(s, 'subscribed');
        }
        await eventually(() => room.connections('alice') === 2, { message: 'two alice connections' });
        alice1.disconnect();
        await eventually(() => room.connections('alice') === 1, { message: 'one alice connection left' });
        assert.deepEqual(log, ['+watcher', '+alice']);
        alice2.disconnect();
        await eventually(() => log.length === 3, { message: 'alice left' });
        assert.deepEqual(log, ['+watcher', '+alice', '-alice']);
        assert.deepEqual(room.users(), ['watcher']);
      } finally {
        for (const c of all) c.disconnect();
      }
    }));
});
