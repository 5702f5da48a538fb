// The Centrifugo v2 JSON protocol spoken by hand over a raw WebSocket (no SDK, STYLE 10):
// connect/subscribe replies, a pub push, several commands in one frame ('\n'), the server's
// `{}` ping answered by `{}`, and 3012 for a client that never answers pings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET, withNode } from '../lib/harness.js';
import { rawConnect } from '../lib/raw.js';
import { userToken } from '../lib/token.js';
import { eventually } from '../lib/wait.js';

describe('raw JSON protocol', () => {
  test('connect, subscribe, batched commands, pub push', () =>
    withNode({}, async ({ node }) => {
      const c = await rawConnect(node);
      try {
        c.ws.send(JSON.stringify({ id: 1, connect: { token: userToken('raw', TOKEN_SECRET), name: 'raw' } }));
        const connected = await c.reply(1);
        assert.match(connected.connect.client, /\S/);
        assert.equal(typeof connected.connect.ping, 'number');
        assert.equal(connected.connect.pong, true);
        c.ws.send(
          [
            JSON.stringify({ id: 2, subscribe: { channel: 'chat:raw', recoverable: true } }),
            JSON.stringify({ id: 3, presence_stats: { channel: 'chat:raw' } }),
            JSON.stringify({ id: 4, publish: { channel: 'chat:raw', data: { hello: 'wire' } } }),
          ].join('\n'),
        );
        const sub = await c.reply(2);
        assert.equal(sub.subscribe.recoverable, true);
        assert.match(sub.subscribe.epoch, /\S/);
        assert.deepEqual((await c.reply(3)).presence_stats, { num_clients: 1, num_users: 1 });
        assert.ok((await c.reply(4)).publish, 'publish reply');
        await eventually(() => c.messages.some((m) => m.push?.pub));
        const push = c.messages.find((m) => m.push?.pub).push;
        assert.equal(push.channel, 'chat:raw');
        assert.deepEqual(push.pub.data, { hello: 'wire' });
        assert.equal(push.pub.offset, 1);
        assert.equal(push.pub.info.user, 'raw');
        c.ws.send(JSON.stringify({ id: 5, history: { channel: 'chat:raw', limit: 10 } }));
        const h = (await c.reply(5)).history;
        assert.equal(h.publications.length, 1);
        c.ws.send(JSON.stringify({ id: 6, subscribe: { channel: 'nope:raw' } }));
        assert.equal((await c.reply(6)).error.code, 102);
      } finally {
        c.ws.terminate();
      }
    }));

  test('server pings {} and expects {}; a silent client is closed with 3012', () =>
    withNode({ client: { ping_interval_s: 2, pong_timeout_s: 1 } }, async ({ node }) => {
      const good = await rawConnect(node, { autoPong: true });
      const bad = await rawConnect(node, { autoPong: false });
      try {
        for (const [i, c] of [good, bad].entries()) {
          c.ws.send(JSON.stringify({ id: 1, connect: { token: userToken(`p${i}`, TOKEN_SECRET) } }));
          await c.reply(1);
        }
        await eventually(() => bad.closed, { timeoutMs: 10000, message: 'silent client closed' });
        assert.equal(bad.closed.code, 3012);
        assert.ok(bad.pings >= 1, 'it was pinged');
        assert.ok(good.pings >= 1, 'the good client was pinged too');
        assert.equal(good.closed, null, 'a client that answers stays connected');
      } finally {
        good.ws.terminate();
        bad.ws.terminate();
      }
    }));

  test('W-12: a command before connect closes with 3501; W-14: a second connect closes with 3501', () =>
    withNode({}, async ({ node }) => {
      const early = await rawConnect(node);
      const twice = await rawConnect(node);
      try {
        early.ws.send(JSON.stringify({ id: 1, subscribe: { channel: 'chat:x' } }));
        await eventually(() => early.closed, { message: 'closed before connect' });
        assert.equal(early.closed.code, 3501);
        twice.ws.send(JSON.stringify({ id: 1, connect: { token: userToken('t', TOKEN_SECRET) } }));
        await twice.reply(1);
        twice.ws.send(JSON.stringify({ id: 2, connect: { token: userToken('t', TOKEN_SECRET) } }));
        await eventually(() => twice.closed, { message: 'closed on a second connect' });
        assert.equal(twice.closed.code, 3501);
      } finally {
        early.ws.terminate();
        twice.ws.terminate();
      }
    }));

  test('W-5/W-8/W-2: malformed JSON closes 3501, a command without a method is 104, an oversize frame closes 1009; other clients keep being served', () =>
    withNode({ limits: { max_publication_bytes: 4096 } }, async ({ node }) => {
      const token = userToken('w', TOKEN_SECRET);
      const bystander = await rawConnect(node);
      const bad = await rawConnect(node);
      const unknown = await rawConnect(node);
      const big = await rawConnect(node);
      try {
        bystander.ws.send(JSON.stringify({ id: 1, connect: { token } }));
        await bystander.reply(1);
        bystander.ws.send(JSON.stringify({ id: 2, subscribe: { channel: 'chat:by' } }));
        assert.ok((await bystander.reply(2)).subscribe, 'bystander subscribed');

        bad.ws.send('{"id":1,"connect":{');  // W-5: not JSON
        await eventually(() => bad.closed, { message: 'malformed frame closes' });
        assert.equal(bad.closed.code, 3501);

        unknown.ws.send(JSON.stringify({ id: 1, connect: { token } }));
        await unknown.reply(1);
        unknown.ws.send(JSON.stringify({ id: 2, frobnicate: {} }));  // W-8: no known method
        assert.equal((await unknown.reply(2)).error.code, 104);
        unknown.ws.send(JSON.stringify({ id: 3, publish: { channel: 'chat:by', data: 'x'.repeat(5000) } }));
        assert.equal((await unknown.reply(3)).error.code, 106, 'publication over the limit');

        // W-2: the node refuses frames over its message limit (max(64 KiB, 2 x max publication)).
        big.ws.send('{"id":1,"connect":{"token":"' + 'x'.repeat(70 * 1024) + '"}}');
        await eventually(() => big.closed, { message: 'oversize frame closes' });
        assert.equal(big.closed.code, 1009);

        await node.api('publish', { channel: 'chat:by', data: { still: 'served' } });
        await eventually(() => bystander.messages.some((m) => m.push?.pub?.data?.still === 'served'), {
          message: 'the bystander still gets publications',
        });
        assert.equal(bystander.closed, null);
      } finally {
        for (const c of [bystander, bad, unknown, big]) c.ws.terminate();
      }
    }));

  test('W-20: unknown rpc method 104, built-in params of the wrong shape 107', () =>
    withNode({}, async ({ node }) => {
      const c = await rawConnect(node);
      try {
        c.ws.send(JSON.stringify({ id: 1, connect: { token: userToken('r', TOKEN_SECRET) } }));
        await c.reply(1);
        c.ws.send(
          [
            JSON.stringify({ id: 2, rpc: { method: 'no.such.method', data: {} } }),
            JSON.stringify({ id: 3, rpc: { method: 'chorus.presence_page', data: { channel: 5 } } }),
            JSON.stringify({ id: 4, rpc: { method: 'chorus.presence_users', data: {} } }),
            JSON.stringify({ id: 5, rpc: { method: 'chorus.presence_users', data: { channel: 'chat:r' } } }),
          ].join('\n'),
        );
        assert.equal((await c.reply(2)).error?.code, 104);
        assert.equal((await c.reply(3)).error?.code, 107);
        assert.equal((await c.reply(4)).error?.code, 107);
        assert.deepEqual((await c.reply(5)).rpc, { data: { users: [], num_users: 0 } });
      } finally {
        c.ws.terminate();
      }
    }));
});
