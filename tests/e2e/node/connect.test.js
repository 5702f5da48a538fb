// Connecting with the real centrifuge SDK (Node.js, `ws`): anonymous (client_insecure), with
// HS256 tokens, and the SDK's view of rejected tokens. As Centrifugo: a missing or invalid token
// closes the connection with 3500 "invalid token" (the SDK's `disconnected`, no reconnect); an
// expired one is error 109, after which the SDK asks getToken for a new one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN_SECRET, connect, subscribe, withNode } from '../lib/harness.js';
import { hs256, invalidTokens, userToken } from '../lib/token.js';
import { eventually, record, waitEvent } from '../lib/wait.js';

describe('connect', () => {
  test('client_insecure: connect without a token, anonymous, may subscribe and publish', () =>
    withNode({ client: { client_insecure: true } }, async ({ client }) => {
      const c = client();
      const ctx = await connect(c);
      assert.match(ctx.client, /\S/, 'a client id');
      assert.equal(ctx.transport, 'websocket');
      const sub = c.newSubscription('chat:anon');
      await subscribe(sub);
      const got = waitEvent(sub, 'publication');
      await sub.publish({ text: 'hi' });
      assert.deepEqual((await got).data, { text: 'hi' });
      const { clients } = await sub.presence();
      assert.equal(clients[ctx.client]?.user, '');
    }));

  test('token: user and info come from the HS256 token', () =>
    withNode({}, async ({ client }) => {
      const c = client({ token: userToken('alice', TOKEN_SECRET, { info: { name: 'Alice' } }) });
      const ctx = await connect(c);
      const sub = c.newSubscription('chat:tok');
      await subscribe(sub);
      const { clients } = await sub.presence();
      assert.equal(clients[ctx.client].user, 'alice');
      assert.deepEqual(clients[ctx.client].connInfo, { name: 'Alice' });
    }));

  test('W-13: no token on a node that needs one: closed with 3500, no reconnect', () =>
    withNode({}, async ({ client }) => {
      const c = client();
      const err = await connect(c).then(
        () => assert.fail('connected without a token'),
        (e) => e,
      );
      assert.equal(err.code, 3500);
      assert.equal(c.state, 'disconnected');
    }));

  test('W-13: bad signature, alg none, garbage: closed with 3500, no reconnect', () =>
    withNode({}, async ({ client }) => {
      for (const [name, token] of Object.entries(invalidTokens('mallory'))) {
        const c = client({ token });
        const err = await connect(c).then(
          () => assert.fail(`${name}: connected`),
          (e) => e,
        );
        assert.equal(err.code, 3500, name);
        assert.equal(c.state, 'disconnected', `${name}: no reconnect`);
      }
    }));

  test('W-13: expired token: the SDK gets 109 and asks getToken for a fresh one', () =>
    withNode({}, async ({ client }) => {
      let calls = 0;
      const c = client({
        token: userToken('bob', TOKEN_SECRET, { ttlS: -10 }),
        getToken: async () => {
          calls++;
          return userToken('bob', TOKEN_SECRET);
        },
      });
      const errors = record(c, ['error']);
      await connect(c);
      assert.equal(calls, 1, 'getToken called once');
      const codes = errors.map((e) => e.ctx.error?.code);
      assert.ok(codes.includes(109), `SDK saw 109, saw ${JSON.stringify(codes)}`);
    }));

  test('a token expiring soon: the node tells the SDK (ttl) and the SDK refreshes it', () =>
    withNode({}, async ({ client }) => {
      let calls = 0;
      const now = Math.floor(Date.now() / 1000);
      const exp = now + 2;
      const c = client({
        token: hs256({ sub: 'carol', exp }, TOKEN_SECRET),
        getToken: async () => {
          calls++;
          return userToken('carol', TOKEN_SECRET);
        },
      });
      await connect(c);
      const disconnects = record(c, ['disconnected', 'connecting']);
      await eventually(() => calls >= 1, { timeoutMs: 8000, message: 'getToken called to refresh' });
      // Past the first token's expiry the connection is still the same one.
      await eventually(() => Date.now() / 1000 > exp + 1.5, { timeoutMs: 8000, message: 'expiry passed' });
      assert.equal(c.state, 'connected');
      assert.deepEqual(disconnects, [], 'never dropped');
    }));
});
