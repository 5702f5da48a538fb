// UserSubscription and ChorusClient wiring, against a fake Centrifuge.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ChorusClient } from '../src/index.js';
import { FakeCentrifuge, flush } from './fake_centrifuge.js';

function setup(opts) {
  const fake = new FakeCentrifuge();
  const client = ChorusClient.wrap(fake);
  const us = client.userSubscription('chat:lobby', opts);
  const log = [];
  const snapshots = [];
  us.on('userJoin', (e) => {
    log.push(`+${e.user}`);
    snapshots.push(e.snapshot);
  });
  us.on('userLeave', (e) => {
    log.push(`-${e.user}`);
    snapshots.push(e.snapshot);
  });
  us.on('sync', (e) => log.push(`sync:${e.users.join(',')}`));
  return { fake, client, us, sub: fake.getSubscription('chat:lobby'), log, snapshots };
}

describe('UserSubscription', () => {
  test('requests join/leave and keeps the other SDK options', () => {
    const { sub } = setup({ recoverable: true, since: { offset: 3, epoch: 'e' } });
    assert.equal(sub.options.joinLeave, true);
    assert.equal(sub.options.recoverable, true);
    assert.deepEqual(sub.options.since, { offset: 3, epoch: 'e' });
    assert.equal('snapshot' in sub.options, false);
  });

  test('refuses a channel that already has an SDK subscription', () => {
    const fake = new FakeCentrifuge();
    fake.newSubscription('chat:lobby', {});
    assert.throws(() => ChorusClient.wrap(fake).userSubscription('chat:lobby'), /already/);
  });

  test('snapshot over every presence page, then pushes', async () => {
    const { fake, us, sub, log, snapshots } = setup({ pageLimit: 2 });
    us.subscribe();
    sub.serverSubscribed();
    assert.deepEqual(fake.rpcCalls[0].data, { channel: 'chat:lobby', limit: 2 });
    assert.equal(fake.rpcCalls[0].method, 'chorus.presence_page');
    fake.answerPage([['a1', 'alice', { n: 1 }], ['a2', 'alice']], 'a2');
    await flush();
    assert.deepEqual(fake.rpcCalls[0].data, { channel: 'chat:lobby', cursor: 'a2', limit: 2 });
    fake.answerPage([['b1', 'bob']]);
    await flush();
    assert.deepEqual(log, ['+alice', '+bob', 'sync:alice,bob']);
    assert.equal(us.synced, true);
    assert.equal(us.connections('alice'), 2);
    sub.pushJoin('c1', 'carol');
    sub.pushLeave('a1', 'alice');
    sub.pushLeave('a2', 'alice');
    assert.deepEqual(log.slice(3), ['+carol', '-alice']);
    assert.deepEqual(snapshots, [true, true, false, false], 'snapshot flag: found by snapshot or push');
    assert.deepEqual(us.users(), ['bob', 'carol']);
  });

  test('pushes during the snapshot read are reconciled', async () => {
    const { fake, us, sub, log } = setup();
    us.subscribe();
    sub.serverSubscribed();
    sub.pushLeave('b1', 'bob'); // the page below was read before bob left
    sub.pushJoin('d1', 'dan'); // and before dan came
    assert.deepEqual(log, []);
    fake.answerPage([['a1', 'alice'], ['b1', 'bob']]);
    await flush();
    assert.deepEqual(log, ['+alice', '+dan', 'sync:alice,dan']);
  });

  test('reconnect: users stay visible, the resync reports only the difference', async () => {
    const { fake, us, sub, log } = setup();
    us.subscribe();
    sub.serverSubscribed();
    fake.answerPage([['a1', 'alice'], ['b1', 'bob']]);
    await flush();
    log.length = 0;
    sub.transportLost();
    assert.equal(us.synced, false);
    assert.deepEqual(us.users(), ['alice', 'bob']);
    sub.serverSubscribed();
    fake.answerPage([['a7', 'alice'], ['c1', 'carol']]);
    await flush();
    assert.deepEqual(log, ['-bob', '+carol', 'sync:alice,carol']);
  });

  test('a snapshot of an older subscription is dropped', async () => {
    const { fake, us, sub, log } = setup();
    us.subscribe();
    sub.serverSubscribed();
    const stale = fake.rpcCalls.shift();
    sub.transportLost();
    sub.serverSubscribed();
    stale.resolve({ data: { presence: { z1: { client: 'z1', user: 'zed' } } } });
    await flush();
    assert.deepEqual(log, []);
    fake.answerPage([['a1', 'alice']]);
    await flush();
    assert.deepEqual(log, ['+alice', 'sync:alice']);
  });

  test('a failed snapshot is reported and retried', async () => {
    const { fake, us, sub, log } = setup();
    const errors = [];
    us.on('error', (e) => errors.push(e));
    us.subscribe();
    sub.serverSubscribed();
    fake.rpcCalls.shift().reject({ code: 108, message: 'not available' });
    await flush();
    assert.equal(errors.length, 1);
    assert.equal(errors[0].type, 'snapshot');
    assert.equal(errors[0].error.code, 108);
    const deadline = Date.now() + 3000;
    while (fake.rpcCalls.length === 0 && Date.now() < deadline) await flush();
    assert.equal(fake.rpcCalls.length, 1, 'retried');
    fake.answerPage([['a1', 'alice']]);
    await flush();
    assert.deepEqual(log, ['+alice', 'sync:alice']);
  });

  test("snapshot 'presence' uses subscription.presence()", async () => {
    const { fake, us, sub, log } = setup({ snapshot: 'presence' });
    us.subscribe();
    sub.serverSubscribed();
    assert.equal(fake.rpcCalls.length, 0);
    sub.presenceCalls[0].resolve({ clients: { a1: { client: 'a1', user: 'alice' } } });
    await flush();
    assert.deepEqual(log, ['+alice', 'sync:alice']);
  });

  test('unsubscribe clears with a leave per user; whenSynced waits for a snapshot', async () => {
    const { fake, us, sub, log } = setup();
    us.subscribe();
    sub.serverSubscribed();
    const synced = us.whenSynced(1000);
    fake.answerPage([['a1', 'alice'], ['b1', 'bob']]);
    assert.deepEqual(await synced, ['alice', 'bob']);
    log.length = 0;
    us.unsubscribe();
    assert.deepEqual(log.sort(), ['-alice', '-bob']);
    await assert.rejects(us.whenSynced(10), /not synced/);
  });

  test('destroy removes the SDK subscription and listeners', () => {
    const { fake, us, sub } = setup();
    us.subscribe();
    us.destroy();
    assert.equal(fake.getSubscription('chat:lobby'), null);
    assert.equal(sub._listeners.get('join')?.length ?? 0, 0);
  });
});

describe('ChorusClient presence rpc', () => {
  test('presencePage normalises ClientInfo and the cursor', async () => {
    const fake = new FakeCentrifuge();
    const p = ChorusClient.wrap(fake).presencePage('chat:x', { cursor: 'k', limit: 5 });
    assert.deepEqual(fake.rpcCalls[0].data, { channel: 'chat:x', cursor: 'k', limit: 5 });
    fake.rpcCalls.shift().resolve({
      data: { presence: { c1: { user: 'u', conn_info: { a: 1 }, chan_info: 2 } }, next_cursor: 'c1' },
    });
    assert.deepEqual(await p, {
      presence: { c1: { client: 'c1', user: 'u', connInfo: { a: 1 }, chanInfo: 2 } },
      nextCursor: 'c1',
    });
  });

  test('presenceAll stops when the cursor does not advance', async () => {
    const fake = new FakeCentrifuge();
    const p = ChorusClient.wrap(fake).presenceAll('chat:x');
    fake.answerPage([['b', 'u']], 'b');
    await flush();
    fake.answerPage([['a', 'u']], 'a');
    await assert.rejects(p, /did not advance/);
  });

  test('presenceUsers', async () => {
    const fake = new FakeCentrifuge();
    const p = ChorusClient.wrap(fake).presenceUsers('chat:x');
    assert.equal(fake.rpcCalls[0].method, 'chorus.presence_users');
    fake.rpcCalls.shift().resolve({ data: { users: ['a', 'b'], num_users: 2 } });
    assert.deepEqual(await p, { users: ['a', 'b'], numUsers: 2 });
  });
});
