// watchSync / SyncWatch against a fake Centrifuge: typed events, history on (re)load, history
// and live racing, recovery after a reconnect, a lost stream (new epoch), bad publications.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ChorusClient, parseSyncProgress } from '../src/index.js';
import { FakeCentrifuge, flush } from './fake_centrifuge.js';

// A progress event as the node publishes it (broker/node/src/sync_service.cc ProgressJson).
function ev(job, done, total, { state = 'running', phase, final = false, failed = 0, errors } = {}) {
  const e = {
    type: 'sync_progress',
    job,
    user: 'alice',
    state,
    phase: phase ?? (final ? state : 'syncing'),
    done,
    failed,
    total,
    rate: done ? 100.5 : 0,
    eta_ms: final ? 0 : done ? (total - done) * 10 : null,
    final,
  };
  if (final) e.errors = errors ?? [];
  return e;
}
const fin = (job, n, opts = {}) => ev(job, n, n, { state: 'succeeded', final: true, ...opts });

function setup(opts) {
  const fake = new FakeCentrifuge();
  const watch = ChorusClient.wrap(fake).watchSync('alice', opts);
  const log = [];
  watch.on('progress', (p) => log.push(`${p.job}:${p.done}/${p.total}${p.fromHistory ? 'h' : ''}`));
  watch.on('final', (p) => log.push(`final ${p.job} ${p.state}`));
  watch.on('sync', (c) => log.push(`sync ${c.jobs.map((j) => j.job).join(',')}`));
  const errors = [];
  watch.on('error', (e) => errors.push(e));
  return { fake, watch, sub: fake.getSubscription('sync:alice'), log, errors };
}

describe('parseSyncProgress', () => {
  test('maps the wire fields to typed ones with percent and offset', () => {
    const p = parseSyncProgress(ev(7, 512, 900), 42);
    assert.deepEqual(p, {
      job: 7, user: 'alice', state: 'running', phase: 'syncing', done: 512, failed: 0,
      total: 900, rate: 100.5, etaMs: 3880, final: false, errors: [], percent: 56, offset: 42,
    });
    assert.equal(parseSyncProgress(ev(7, 0, 0, { phase: 'listing' })).etaMs, null);
    assert.equal(parseSyncProgress(ev(7, 0, 0, { phase: 'listing' })).percent, 0);
    // failed files count as finished; the final event is 100 whatever the counts.
    assert.equal(parseSyncProgress(ev(7, 5, 10, { failed: 5 })).percent, 100);
    const f = parseSyncProgress(fin(7, 0, { state: 'failed', errors: ['no such source'] }));
    assert.equal(f.percent, 100);
    assert.deepEqual(f.errors, ['no such source']);
  });

  test('refuses what is not a progress event, naming the field', () => {
    assert.throws(() => parseSyncProgress('text'), /not an object/);
    assert.throws(() => parseSyncProgress({ type: 'chat' }), /type chat/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), job: 0 }), /bad job/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), state: 'weird' }), /bad state/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), phase: 'x' }), /bad phase/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), done: -1 }), /bad done/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), total: 1.5 }), /bad total/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), rate: 'fast' }), /bad rate/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), eta_ms: -3 }), /bad eta_ms/);
    assert.throws(() => parseSyncProgress({ ...ev(1, 1, 2), final: 1 }), /bad final/);
    assert.throws(() => parseSyncProgress({ ...fin(1, 1), errors: [3] }), /bad errors/);
  });
});

describe('SyncWatch', () => {
  test('subscribes to sync:<user>, recoverable, keeping the other SDK options', () => {
    const { sub, watch } = setup({ since: { offset: 3, epoch: 'e' } });
    assert.equal(watch.channel, 'sync:alice');
    assert.equal(sub.options.recoverable, true);
    assert.deepEqual(sub.options.since, { offset: 3, epoch: 'e' });
    assert.equal('historyLimit' in sub.options, false);
  });

  test('refuses a bad user, a bad historyLimit and a channel already subscribed', () => {
    const fake = new FakeCentrifuge();
    const client = ChorusClient.wrap(fake);
    assert.throws(() => client.watchSync('al ice'), /user must match/);
    assert.throws(() => client.watchSync(''), /user must match/);
    assert.throws(() => client.watchSync('bob', { historyLimit: 0 }), /historyLimit/);
    fake.newSubscription('sync:carol', {});
    assert.throws(() => client.watchSync('carol'), /already/);
  });

  test('a page that loads gets the current state of every job from history', async () => {
    const { watch, sub, log } = setup({ historyLimit: 16 });
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 5, epoch: 'e1' } });
    assert.deepEqual(sub.historyCalls[0].opts, { limit: 16, reverse: true });
    assert.equal(watch.synced, false);
    sub.answerHistory([[ev(1, 10, 100), 1], [ev(1, 50, 100), 2], [fin(1, 100), 3], [ev(2, 0, 0, { phase: 'listing' }), 4], [ev(2, 30, 60), 5]]);
    await flush();
    assert.deepEqual(log, ['1:10/100h', '1:50/100h', '1:100/100h', 'final 1 succeeded', '2:0/0h', '2:30/60h', 'sync 2,1']);
    assert.equal(watch.synced, true);
    assert.deepEqual(watch.jobs().map((j) => [j.job, j.percent, j.final]), [[2, 50, false], [1, 100, true]]);
    assert.deepEqual(await watch.whenSynced(), watch.jobs());
  });

  test('live events racing the history read are applied once, in stream order', async () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 2, epoch: 'e1' } });
    // Offsets 3 and 4 arrive live before the history answer, which holds 1..3.
    sub.pushPublication(ev(1, 30, 40), 3);
    sub.pushPublication(fin(1, 40), 4);
    sub.answerHistory([[ev(1, 10, 40), 1], [ev(1, 20, 40), 2], [ev(1, 30, 40), 3]]);
    await flush();
    assert.deepEqual(log, ['1:30/40', '1:40/40', 'final 1 succeeded', 'sync 1']);
    assert.equal(watch.job(1).final, true);
    assert.equal(watch.job(1).offset, 4);
  });

  test('a reconnect that recovers reads no history; the missed events come as publications', async () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 1, epoch: 'e1' } });
    sub.answerHistory([[ev(3, 1, 10), 1]]);
    await flush();
    sub.transportLost();
    assert.equal(watch.synced, false);
    sub.pushPublication(ev(3, 5, 10), 2); // the SDK's recovered publications
    sub.pushPublication(fin(3, 10), 3);
    sub.serverSubscribed({ wasRecovering: true, recovered: true, streamPosition: { offset: 3, epoch: 'e1' } });
    await flush();
    assert.equal(sub.historyCalls.length, 0);
    assert.deepEqual(log, ['3:1/10h', 'sync 3', '3:5/10', '3:10/10', 'final 3 succeeded', 'sync 3']);
    assert.equal(watch.synced, true);
  });

  test('a reconnect that cannot recover rereads history; known events are not repeated', async () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 1, epoch: 'e1' } });
    sub.answerHistory([[ev(3, 1, 10), 1]]);
    await flush();
    sub.transportLost();
    sub.serverSubscribed({ wasRecovering: true, recovered: false, streamPosition: { offset: 3, epoch: 'e1' } });
    sub.answerHistory([[ev(3, 1, 10), 1], [ev(3, 5, 10), 2], [fin(3, 10), 3]]);
    await flush();
    assert.deepEqual(log, ['3:1/10h', 'sync 3', '3:5/10h', '3:10/10h', 'final 3 succeeded', 'sync 3']);
  });

  test('a new epoch (the node lost the stream) forgets the old jobs', async () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 2, epoch: 'e1' } });
    sub.answerHistory([[ev(1, 1, 10), 1], [fin(2, 5), 2]]);
    await flush();
    sub.transportLost();
    sub.serverSubscribed({ wasRecovering: true, recovered: false, streamPosition: { offset: 1, epoch: 'e2' } });
    // Job ids restart with the node: the new job 1 is applied although its offset is lower.
    sub.answerHistory([[ev(1, 2, 4), 1]], 'e2');
    await flush();
    assert.deepEqual(log.slice(-2), ['1:2/4h', 'sync 1']);
    assert.deepEqual(watch.jobs().map((j) => [j.job, j.total]), [[1, 4]]);
  });

  test('a stale history answer (resubscribed meanwhile) is dropped', async () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 1, epoch: 'e1' } });
    sub.transportLost();
    sub.serverSubscribed({ wasRecovering: true, recovered: false, streamPosition: { offset: 2, epoch: 'e1' } });
    sub.answerHistory([[ev(1, 1, 10), 1]]); // the first read: stale
    sub.answerHistory([[ev(1, 1, 10), 1], [ev(1, 2, 10), 2]]);
    await flush();
    assert.deepEqual(log, ['1:1/10h', '1:2/10h', 'sync 1']);
  });

  test('a failed history read is reported and retried', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { watch, sub, log, errors } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 1, epoch: 'e1' } });
    sub.historyCalls.shift().reject(new Error('boom'));
    await flush();
    assert.equal(errors.length, 1);
    assert.equal(errors[0].type, 'history');
    assert.equal(sub.historyCalls.length, 0);
    t.mock.timers.tick(200);
    assert.equal(sub.historyCalls.length, 1);
    sub.answerHistory([[fin(9, 3), 1]]);
    await flush();
    assert.deepEqual(log, ['9:3/3h', 'final 9 succeeded', 'sync 9']);
  });

  test('a publication that is not a progress event is reported and ignored', async () => {
    const { watch, sub, log, errors } = setup();
    watch.subscribe();
    sub.serverSubscribed({ streamPosition: { offset: 0, epoch: 'e1' } });
    sub.answerHistory([]);
    await flush();
    sub.pushPublication({ text: 'hello' }, 1);
    sub.pushPublication(ev(4, 1, 2), 2);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].type, 'event');
    assert.deepEqual(log, ['sync ', '4:1/2']);
  });

  test('without offsets a job never moves back after its final event', () => {
    const { watch, sub, log } = setup();
    watch.subscribe();
    sub.pushPublication(fin(5, 2));
    sub.pushPublication(ev(5, 1, 2));
    assert.deepEqual(log, ['5:2/2', 'final 5 succeeded']);
  });

  test('destroy removes the subscription and the listeners', () => {
    const { fake, watch, sub } = setup();
    watch.subscribe();
    watch.destroy();
    assert.equal(fake.getSubscription('sync:alice'), null);
    assert.equal(sub.state, 'unsubscribed');
    assert.equal(watch.emit('progress', {}), false);
  });
});
