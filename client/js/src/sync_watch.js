// SyncWatch: live progress of a user's sync jobs (docs/scheduler.md, "Progress events").
//
// The node publishes `sync_progress` events on channel `sync:<user>` (at most one per job per
// progress interval, plus a final one) and the `sync` namespace keeps history. A SyncWatch owns
// one recoverable SDK subscription to that channel and keeps the latest event of each job:
//   - after the first subscribe (a page that just loaded) and after a resubscribe that could not
//     recover (`recovered: false`: the channel's past was lost), it reads the channel's recent
//     history, so the page shows the current state of every job still in history;
//   - after a reconnect that recovered, the SDK delivers the missed publications itself.
// History and live publications race; every event carries its offset in the stream and a job's
// state only moves to a newer offset, so an event is applied once, in stream order, whatever
// arrives first. A new epoch (the node lost the stream, e.g. a restart) forgets the jobs seen
// before it: the `sync` event that follows lists the new epoch's jobs.
//
// Events (this object's `on`):
//   progress SyncProgress       a job's state changed (from history or live)
//   final    SyncProgress       a job ended (once per job and epoch; also from history)
//   sync     {channel, jobs}    history was applied (after each subscribe without recovery)
//   error    {channel, type: 'history' | 'event', error}  history read failed (retried with
//            backoff) or a publication on the channel was not a progress event (ignored)

import { OwnedSubscription } from './owned_subscription.js';

const kMinRetryMs = 200;
const kMaxRetryMs = 10000;
const kPhases = new Set(['queued', 'listing', 'syncing', 'succeeded', 'failed', 'cancelled']);
const kStates = new Set(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
// The node's rule for user names in sync jobs (sync_submit `user`).
export const SYNC_USER_RE = /^[A-Za-z0-9_.@-]{1,128}$/;

const isCount = (v) => Number.isSafeInteger(v) && v >= 0;

// Turns the data of a publication on `sync:<user>` into a SyncProgress, or throws a TypeError
// naming the first field that is wrong. `offset`: the publication's offset (0 if unknown).
export function parseSyncProgress(data, offset = 0) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new TypeError('sync progress: data is not an object');
  }
  if (data.type !== 'sync_progress') throw new TypeError(`sync progress: type ${data.type}`);
  const bad = (field) => new TypeError(`sync progress: bad ${field}: ${JSON.stringify(data[field])}`);
  if (!isCount(data.job) || data.job === 0) throw bad('job');
  if (typeof data.user !== 'string') throw bad('user');
  if (!kStates.has(data.state)) throw bad('state');
  if (!kPhases.has(data.phase)) throw bad('phase');
  for (const f of ['done', 'failed', 'total']) if (!isCount(data[f])) throw bad(f);
  if (typeof data.rate !== 'number' || !(data.rate >= 0)) throw bad('rate');
  const eta = data.eta_ms;
  if (eta !== null && eta !== undefined && !isCount(eta)) throw bad('eta_ms');
  if (typeof data.final !== 'boolean') throw bad('final');
  const errors = data.errors ?? [];
  if (!Array.isArray(errors) || errors.some((e) => typeof e !== 'string')) throw bad('errors');
  const finished = data.done + data.failed;
  let percent;
  if (data.final) percent = 100;
  else if (data.total > 0) percent = Math.min(100, Math.floor((100 * finished) / data.total));
  else percent = 0;
  return {
    job: data.job,
    user: data.user,
    state: data.state,
    phase: data.phase,
    done: data.done,
    failed: data.failed,
    total: data.total,
    rate: data.rate,
    etaMs: eta ?? null,
    final: data.final,
    errors,
    percent,
    offset: isCount(offset) ? offset : 0,
  };
}

export class SyncWatch extends OwnedSubscription {
  // `centrifuge`: a Centrifuge instance (or an object with the same surface).
  // `opts`: historyLimit (events read after a subscribe without recovery, default 100; the
  // namespace's history_size bounds what exists), plus SDK SubscriptionOptions.
  constructor(centrifuge, user, opts = {}) {
    super();
    if (typeof user !== 'string' || !SYNC_USER_RE.test(user)) {
      throw new Error(`watchSync: user must match ${SYNC_USER_RE}, not ${JSON.stringify(user)}`);
    }
    const { historyLimit = 100, ...subOpts } = opts;
    if (!Number.isSafeInteger(historyLimit) || historyLimit < 1) {
      throw new Error(`watchSync: historyLimit must be a positive integer, not ${historyLimit}`);
    }
    this.user = user;
    this.channel = `sync:${user}`;
    this._historyLimit = historyLimit;
    this._jobs = new Map(); // job id -> latest SyncProgress
    this._offsets = new Map(); // job id -> offset of its latest event in the current epoch
    this._finals = new Set(); // jobs whose final event was emitted in the current epoch
    this._epoch = null;
    this._synced = false;
    this._generation = 0; // bumped on every (re)subscribe and unsubscribe: stale reads dropped
    this._retryTimer = null;
    this._retries = 0;
    this._syncWaiters = [];

    if (centrifuge.getSubscription(this.channel)) {
      throw new Error(`watchSync: ${this.channel} already has a subscription in this client`);
    }
    this._own(
      centrifuge,
      centrifuge.newSubscription(this.channel, { ...subOpts, recoverable: true }),
      {
        subscribed: (ctx) => this._onSubscribed(ctx),
        subscribing: () => this._onSubscribing(),
        unsubscribed: () => this._onUnsubscribed(),
        publication: (ctx) => this._onPublication(ctx.data, ctx.offset, false),
      },
    );
  }

  // The latest state of every job seen, newest job first.
  jobs() {
    return [...this._jobs.values()].sort((a, b) => b.job - a.job);
  }

  job(id) {
    return this._jobs.get(id) ?? null;
  }

  // True once history was applied for the current subscription (or it recovered).
  get synced() {
    return this._synced;
  }

  // Resolves with jobs() once synced (at once if already), rejects after `timeoutMs`.
  whenSynced(timeoutMs = 5000) {
    if (this._synced) return Promise.resolve(this.jobs());
    return new Promise((resolve, reject) => {
      const waiter = { resolve };
      waiter.timer = setTimeout(() => {
        this._syncWaiters = this._syncWaiters.filter((w) => w !== waiter);
        reject(new Error(`watchSync ${this.channel}: not synced after ${timeoutMs} ms`));
      }, timeoutMs);
      this._syncWaiters.push(waiter);
    });
  }

  _onSubscribed(ctx) {
    this._cancelRetry();
    this._retries = 0;
    const generation = ++this._generation;
    const epoch = ctx?.streamPosition?.epoch ?? null;
    if (epoch !== null && this._epoch !== null && epoch !== this._epoch) {
      // The stream restarted (the node lost the channel's past, and its jobs with it: job ids
      // restart too). The old epoch's jobs are forgotten; history of the new one follows.
      this._jobs.clear();
      this._offsets.clear();
      this._finals.clear();
    }
    if (epoch !== null) this._epoch = epoch;
    if (ctx?.wasRecovering && ctx?.recovered) {
      this._markSynced(); // the SDK delivers what we missed as publications
      return;
    }
    this._readHistory(generation);
  }

  _readHistory(generation) {
    this.subscription.history({ limit: this._historyLimit, reverse: true }).then(
      (result) => {
        if (generation !== this._generation) return;
        const pubs = [...(result?.publications ?? [])].sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
        for (const pub of pubs) this._onPublication(pub.data, pub.offset, true);
        this._markSynced();
      },
      (error) => {
        if (generation !== this._generation) return;
        this.emit('error', { channel: this.channel, type: 'history', error });
        const delay = Math.min(kMaxRetryMs, kMinRetryMs * 2 ** this._retries++);
        this._retryTimer = setTimeout(() => {
          this._retryTimer = null;
          if (generation === this._generation) this._readHistory(generation);
        }, delay);
      },
    );
  }

  _markSynced() {
    this._synced = true;
    const jobs = this.jobs();
    this.emit('sync', { channel: this.channel, jobs });
    for (const w of this._syncWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(jobs);
    }
  }

  _onPublication(data, offset, fromHistory) {
    let p;
    try {
      p = parseSyncProgress(data, offset ?? 0);
    } catch (error) {
      this.emit('error', { channel: this.channel, type: 'event', error });
      return;
    }
    // Once per offset, in stream order (history and live overlap). Without offsets (a channel
    // without history) a job only moves forward: nothing after its final event.
    const last = this._offsets.get(p.job);
    if (last !== undefined && p.offset && last && p.offset <= last) return;
    if (!p.offset && this._finals.has(p.job)) return;
    const next = { ...p, fromHistory };
    this._jobs.set(p.job, next);
    this._offsets.set(p.job, p.offset);
    this.emit('progress', next);
    if (p.final && !this._finals.has(p.job)) {
      this._finals.add(p.job);
      this.emit('final', next);
    }
  }

  _onSubscribing() {
    this._generation++;
    this._synced = false;
    this._cancelRetry();
  }

  _onUnsubscribed() {
    this._generation++;
    this._synced = false;
    this._cancelRetry();
  }

  _cancelRetry() {
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }
}
