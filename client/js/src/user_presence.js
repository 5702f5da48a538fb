// User-level presence of one channel, computed from connection-level facts (pure logic, no I/O).
//
// The node sends one join/leave push per connection; a user with two tabs is two connections.
// UserPresence keeps the connections (client id -> user) and reports only user transitions:
// a user's first connection is a user join, its last leave a user leave.
//
// Snapshots and pushes race: a snapshot (presence pages) is read while join/leave pushes keep
// arriving, and the pushes received during the read may or may not be reflected in it. So every
// push received after `beginSnapshot()` is logged and replayed on top of the snapshot in
// `applySnapshot()`. This is exact because a client id is one connection: the last event of a
// client in the log decides its state, and a client without events in the log is as the
// snapshot says (the snapshot was read after `beginSnapshot()`).
//
// Every mutator returns the user events it caused, in order:
//   {type: 'join', user, info}  user's first connection (info: that connection's ClientInfo)
//   {type: 'leave', user, info} user's last connection left (info: that connection's ClientInfo)

export class UserPresence {
  constructor() {
    this._clients = new Map(); // client id -> ClientInfo
    this._users = new Map(); // user -> number of connections
    this._log = null; // pushes since beginSnapshot(), or null when no snapshot is pending
    this._synced = false;
  }

  // True once a snapshot has been applied (and not reset since).
  get synced() {
    return this._synced;
  }

  get numClients() {
    return this._clients.size;
  }

  get numUsers() {
    return this._users.size;
  }

  // Users present, sorted.
  users() {
    return [...this._users.keys()].sort();
  }

  hasUser(user) {
    return this._users.has(user);
  }

  // Number of connections of `user` (0 when absent).
  connections(user) {
    return this._users.get(user) ?? 0;
  }

  // ClientInfo of every connection, ordered by client id.
  clients() {
    return [...this._clients.values()].sort((a, b) => (a.client < b.client ? -1 : 1));
  }

  // Call right before the snapshot is requested; pushes from now on are logged.
  beginSnapshot() {
    this._log = [];
  }

  get snapshotPending() {
    return this._log !== null;
  }

  // A join push. Before the first snapshot pushes are only logged (the state is unknown).
  join(info) {
    if (this._log) this._log.push({ kind: 'join', info });
    if (!this._synced) return [];
    return this._add(info);
  }

  // A leave push.
  leave(info) {
    if (this._log) this._log.push({ kind: 'leave', info });
    if (!this._synced) return [];
    return this._remove(info.client);
  }

  // Installs `entries` (ClientInfo of every connection, as read since beginSnapshot()) and
  // replays the logged pushes. Returns the user events relative to the previous state, so
  // after a reconnect only users that really came or went are reported.
  applySnapshot(entries) {
    const log = this._log ?? [];
    this._log = null;
    const next = new Map();
    for (const e of entries) next.set(e.client, e);
    for (const ev of log) {
      if (ev.kind === 'join') next.set(ev.info.client, ev.info);
      else next.delete(ev.info.client);
    }
    const events = [];
    // Leaves first: a user whose connections all changed keeps being present.
    for (const [client, info] of this._clients) {
      if (!next.has(client)) events.push(...this._remove(client));
      else if (next.get(client).user !== info.user) events.push(...this._remove(client));
    }
    for (const info of next.values()) {
      const known = this._clients.get(info.client);
      if (!known) events.push(...this._add(info));
      else this._clients.set(info.client, info); // refreshed info, same user
    }
    this._synced = true;
    // A user may have left and come back within the same snapshot step (all old connections
    // gone, a new one present): leave then join would flicker; fold such pairs away.
    return foldFlicker(events);
  }

  // Forgets everything (the subscription ended): a leave for every user present.
  clear() {
    this._log = null;
    const events = [];
    for (const client of [...this._clients.keys()]) events.push(...this._remove(client));
    this._synced = false;
    return events;
  }

  // Marks the state as possibly stale (the subscription is resubscribing): pushes are ignored
  // until the next snapshot, which reports the difference. The users stay visible meanwhile.
  suspend() {
    this._log = null;
    this._synced = false;
  }

  _add(info) {
    if (this._clients.has(info.client)) {
      const old = this._clients.get(info.client);
      if (old.user === info.user) {
        this._clients.set(info.client, info);
        return [];
      }
      const events = this._remove(info.client);
      return events.concat(this._add(info));
    }
    this._clients.set(info.client, info);
    const n = this._users.get(info.user) ?? 0;
    this._users.set(info.user, n + 1);
    return n === 0 ? [{ type: 'join', user: info.user, info }] : [];
  }

  _remove(client) {
    const info = this._clients.get(client);
    if (!info) return [];
    this._clients.delete(client);
    const n = this._users.get(info.user);
    if (n > 1) {
      this._users.set(info.user, n - 1);
      return [];
    }
    this._users.delete(info.user);
    return [{ type: 'leave', user: info.user, info }];
  }
}

// Drops a `leave u` followed later by `join u` in one batch (the user never was absent).
function foldFlicker(events) {
  const out = [];
  for (const ev of events) {
    if (ev.type === 'join') {
      const i = out.findIndex((e) => e.type === 'leave' && e.user === ev.user);
      if (i >= 0) {
        out.splice(i, 1);
        continue;
      }
    }
    out.push(ev);
  }
  return out;
}
