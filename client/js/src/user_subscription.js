// UserSubscription: a channel subscription of the SDK plus user-level presence.
//
// Owns one SDK Subscription (created with joinLeave: true) and one UserPresence. On every
// `subscribed` (first subscribe and each resubscribe after a reconnect) it reads a presence
// snapshot of connections and reconciles it with the join/leave pushes received meanwhile
// (see user_presence.js); after a reconnect only the users that came or went while we were away
// are reported. While resubscribing the last known users stay visible.
//
// Events (this object's `on`):
//   userJoin  {channel, user, info, snapshot}   a user's first connection joined
//   userLeave {channel, user, info, snapshot}   a user's last connection left
//     (snapshot: true when found by a snapshot after a (re)subscribe rather than by a push)
//   sync      {channel, users}        a snapshot was applied (after each (re)subscribe)
//   error     {channel, type: 'snapshot', error}  reading the snapshot failed; retried
// Publication, state and the other SDK events stay on `.subscription`.

import { OwnedSubscription } from './owned_subscription.js';
import { presenceAll } from './presence.js';
import { UserPresence } from './user_presence.js';

const kMinRetryMs = 200;
const kMaxRetryMs = 10000;

export class UserSubscription extends OwnedSubscription {
  // `centrifuge`: a Centrifuge instance (or an object with the same surface).
  // `opts`: SDK SubscriptionOptions, plus
  //   snapshot: 'pages' (default; chorus.presence_page, every page) or 'presence'
  //             (subscription.presence(): plain Centrifugo; on Chorus one page only)
  //   pageLimit: entries per chorus.presence_page call (default: the node's page size)
  constructor(centrifuge, channel, opts = {}) {
    super();
    const { snapshot = 'pages', pageLimit, ...subOpts } = opts;
    if (snapshot !== 'pages' && snapshot !== 'presence') {
      throw new Error(`userSubscription: snapshot must be 'pages' or 'presence', not ${snapshot}`);
    }
    this.channel = channel;
    this._snapshotKind = snapshot;
    this._pageLimit = pageLimit;
    this._presence = new UserPresence();
    this._generation = 0; // bumped on every (re)subscribe and unsubscribe: stale reads are dropped
    this._retryTimer = null;
    this._retries = 0;
    this._syncWaiters = [];

    if (centrifuge.getSubscription(channel)) {
      throw new Error(`userSubscription: ${channel} already has a subscription in this client`);
    }
    this._own(
      centrifuge,
      centrifuge.newSubscription(channel, { ...subOpts, joinLeave: true }),
      {
        subscribed: () => this._onSubscribed(),
        subscribing: () => this._onSubscribing(),
        unsubscribed: () => this._onUnsubscribed(),
        join: (ctx) => this._emitAll(this._presence.join(ctx.info)),
        leave: (ctx) => this._emitAll(this._presence.leave(ctx.info)),
      },
    );
  }

  // Users present (sorted), as of the last snapshot plus the pushes since.
  users() {
    return this._presence.users();
  }

  hasUser(user) {
    return this._presence.hasUser(user);
  }

  // Connections of `user` in the channel.
  connections(user) {
    return this._presence.connections(user);
  }

  get numUsers() {
    return this._presence.numUsers;
  }

  get numClients() {
    return this._presence.numClients;
  }

  // True when the users reflect a snapshot of the current subscription.
  get synced() {
    return this._presence.synced;
  }

  // Resolves when synced (at once if already), rejects after `timeoutMs`.
  whenSynced(timeoutMs = 5000) {
    if (this.synced) return Promise.resolve(this.users());
    return new Promise((resolve, reject) => {
      const waiter = { resolve };
      waiter.timer = setTimeout(() => {
        this._syncWaiters = this._syncWaiters.filter((w) => w !== waiter);
        reject(new Error(`userSubscription ${this.channel}: not synced after ${timeoutMs} ms`));
      }, timeoutMs);
      this._syncWaiters.push(waiter);
    });
  }

  _onSubscribed() {
    this._cancelRetry();
    this._retries = 0;
    const generation = ++this._generation;
    this._presence.beginSnapshot();
    this._readSnapshot(generation);
  }

  _readSnapshot(generation) {
    this._fetchEntries().then(
      (entries) => {
        if (generation !== this._generation) return;
        this._emitAll(this._presence.applySnapshot(entries), true);
        const users = this._presence.users();
        this.emit('sync', { channel: this.channel, users });
        for (const w of this._syncWaiters.splice(0)) {
          clearTimeout(w.timer);
          w.resolve(users);
        }
      },
      (error) => {
        if (generation !== this._generation) return;
        this.emit('error', { channel: this.channel, type: 'snapshot', error });
        const delay = Math.min(kMaxRetryMs, kMinRetryMs * 2 ** this._retries++);
        this._retryTimer = setTimeout(() => {
          this._retryTimer = null;
          if (generation !== this._generation) return;
          this._presence.beginSnapshot(); // the log restarts: the next read is newer
          this._readSnapshot(generation);
        }, delay);
      },
    );
  }

  async _fetchEntries() {
    const result =
      this._snapshotKind === 'pages'
        ? (await presenceAll(this._centrifuge, this.channel, { limit: this._pageLimit })).presence
        : (await this.subscription.presence()).clients;
    return Object.entries(result).map(([client, info]) => ({ ...info, client }));
  }

  _onSubscribing() {
    this._generation++;
    this._cancelRetry();
    this._presence.suspend();
  }

  _onUnsubscribed() {
    this._generation++;
    this._cancelRetry();
    this._emitAll(this._presence.clear());
  }

  _cancelRetry() {
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  _emitAll(events, snapshot = false) {
    for (const ev of events) {
      const name = ev.type === 'join' ? 'userJoin' : 'userLeave';
      this.emit(name, { channel: this.channel, user: ev.user, info: ev.info, snapshot });
    }
  }
}
