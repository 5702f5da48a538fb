// UserPresence: user-level transitions from connection-level facts, snapshot/push races.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { UserPresence } from '../src/user_presence.js';

const c = (client, user) => ({ client, user });
const ev = (events) => events.map((e) => `${e.type}:${e.user}`);

function synced(entries = []) {
  const p = new UserPresence();
  p.beginSnapshot();
  p.applySnapshot(entries);
  return p;
}

describe('UserPresence', () => {
  test('first connection of a user joins, last leave leaves', () => {
    const p = synced();
    assert.deepEqual(ev(p.join(c('a1', 'alice'))), ['join:alice']);
    assert.deepEqual(ev(p.join(c('a2', 'alice'))), []);
    assert.deepEqual(ev(p.join(c('b1', 'bob'))), ['join:bob']);
    assert.equal(p.connections('alice'), 2);
    assert.deepEqual(ev(p.leave(c('a1', 'alice'))), []);
    assert.deepEqual(ev(p.leave(c('a2', 'alice'))), ['leave:alice']);
    assert.deepEqual(p.users(), ['bob']);
    assert.equal(p.numClients, 1);
  });

  test('duplicate join and unknown leave change nothing', () => {
    const p = synced([c('a1', 'alice')]);
    assert.deepEqual(ev(p.join(c('a1', 'alice'))), []);
    assert.deepEqual(ev(p.leave(c('zz', 'alice'))), []);
    assert.equal(p.connections('alice'), 1);
  });

  test('a known client under another user is a leave then a join', () => {
    const p = synced([c('x', 'alice')]);
    assert.deepEqual(ev(p.join(c('x', 'bob'))), ['leave:alice', 'join:bob']);
  });

  test('initial snapshot reports every user once', () => {
    const p = new UserPresence();
    p.beginSnapshot();
    const events = p.applySnapshot([c('a1', 'alice'), c('a2', 'alice'), c('b1', 'bob')]);
    assert.deepEqual(ev(events), ['join:alice', 'join:bob']);
    assert.equal(p.synced, true);
  });

  test('anonymous connections count as one user ""', () => {
    const p = synced([c('n1', ''), c('n2', '')]);
    assert.deepEqual(p.users(), ['']);
    assert.equal(p.connections(''), 2);
  });

  test('pushes before the snapshot are logged, not applied, then replayed', () => {
    const p = new UserPresence();
    p.beginSnapshot();
    assert.deepEqual(ev(p.join(c('b1', 'bob'))), []);
    // The snapshot was read before bob's join reached the node: bob is missing in it.
    const events = p.applySnapshot([c('a1', 'alice')]);
    assert.deepEqual(ev(events), ['join:alice', 'join:bob']);
  });

  test('a leave logged during the read removes a client the snapshot still lists', () => {
    const p = new UserPresence();
    p.beginSnapshot();
    p.leave(c('a1', 'alice'));
    const events = p.applySnapshot([c('a1', 'alice'), c('b1', 'bob')]);
    assert.deepEqual(ev(events), ['join:bob']);
    assert.deepEqual(p.users(), ['bob']);
  });

  test('a join already reflected in the snapshot is not counted twice', () => {
    const p = new UserPresence();
    p.beginSnapshot();
    p.join(c('a2', 'alice'));
    p.applySnapshot([c('a1', 'alice'), c('a2', 'alice')]);
    assert.equal(p.connections('alice'), 2);
    assert.deepEqual(ev(p.leave(c('a1', 'alice'))), []);
    assert.deepEqual(ev(p.leave(c('a2', 'alice'))), ['leave:alice']);
  });

  test('join then leave during the read, in or out of the snapshot: absent', () => {
    for (const snap of [[], [c('t1', 'tom')]]) {
      const p = new UserPresence();
      p.beginSnapshot();
      p.join(c('t1', 'tom'));
      p.leave(c('t1', 'tom'));
      assert.deepEqual(ev(p.applySnapshot(snap)), []);
      assert.equal(p.hasUser('tom'), false);
    }
  });

  test('interleaved joins and leaves of many users agree with a recount', () => {
    // Deterministic pseudo-random walk; the snapshot is taken at a random point of the log.
    let seed = 7;
    const rnd = (n) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 50; round++) {
      const truth = new Map(); // client -> user
      let next = 0;
      const ops = [];
      for (let i = 0; i < 200; i++) {
        if (truth.size > 0 && rnd(2) === 0) {
          const clients = [...truth.keys()];
          const client = clients[rnd(clients.length)];
          ops.push({ kind: 'leave', info: c(client, truth.get(client)) });
          truth.delete(client);
        } else {
          const info = c(`c${next++}`, `u${rnd(8)}`);
          ops.push({ kind: 'join', info });
          truth.set(info.client, info.user);
        }
      }
      // Replay with a snapshot read after `cut` operations, pushes logged from `begin` <= cut.
      const cut = rnd(ops.length);
      const begin = rnd(cut + 1);
      const atCut = new Map();
      for (const op of ops.slice(0, cut)) {
        if (op.kind === 'join') atCut.set(op.info.client, op.info);
        else atCut.delete(op.info.client);
      }
      const p = new UserPresence();
      const seen = new Map(); // user -> present, from the events
      const apply = (events) => {
        for (const e of events) {
          assert.equal(seen.get(e.user) ?? false, e.type === 'leave', `${e.type} ${e.user}`);
          seen.set(e.user, e.type === 'join');
        }
      };
      for (const [i, op] of ops.entries()) {
        if (i === begin) p.beginSnapshot();
        if (i >= begin) apply(op.kind === 'join' ? p.join(op.info) : p.leave(op.info));
      }
      if (begin === ops.length) p.beginSnapshot();
      apply(p.applySnapshot([...atCut.values()]));
      const users = [...new Set(truth.values())].sort();
      assert.deepEqual(p.users(), users, `round ${round}`);
      assert.deepEqual([...seen].filter(([, v]) => v).map(([u]) => u).sort(), users);
      assert.equal(p.numClients, truth.size);
    }
  });

  test('resync after a reconnect reports only the difference', () => {
    const p = synced([c('a1', 'alice'), c('b1', 'bob')]);
    p.suspend();
    // While away: bob left, carol came, alice reconnected with a new client id.
    assert.deepEqual(ev(p.join(c('zz', 'zed'))), []); // ignored while suspended
    assert.deepEqual(p.users(), ['alice', 'bob']); // still visible
    p.beginSnapshot();
    const events = p.applySnapshot([c('a9', 'alice'), c('c1', 'carol')]);
    assert.deepEqual(ev(events), ['leave:bob', 'join:carol']);
    assert.deepEqual(p.users(), ['alice', 'carol']);
    assert.equal(p.connections('alice'), 1);
  });

  test('clear reports a leave per user and unsyncs', () => {
    const p = synced([c('a1', 'alice'), c('a2', 'alice'), c('b1', 'bob')]);
    assert.deepEqual(ev(p.clear()).sort(), ['leave:alice', 'leave:bob']);
    assert.equal(p.synced, false);
    assert.deepEqual(p.users(), []);
    assert.deepEqual(ev(p.join(c('a1', 'alice'))), []); // unsynced: not applied
  });
});
