// A Centrifuge-like fake for unit tests: subscriptions whose events the test drives, and an
// rpc whose answers the test controls (resolved manually, so races can be staged).
import { Emitter } from '../src/emitter.js';

export class FakeSubscription extends Emitter {
  constructor(channel, options) {
    super();
    this.channel = channel;
    this.options = options;
    this.state = 'unsubscribed';
    this.presenceCalls = [];
    this.historyCalls = []; // {opts, resolve, reject}
  }

  subscribe() {
    this.state = 'subscribing';
    this.emit('subscribing', { channel: this.channel, code: 0, reason: 'subscribe called' });
  }

  unsubscribe() {
    if (this.state === 'unsubscribed') return;
    this.state = 'unsubscribed';
    this.emit('unsubscribed', { channel: this.channel, code: 0, reason: 'unsubscribe called' });
  }

  // Test drivers. `ctx`: extra fields of the subscribed context (recovered, wasRecovering,
  // streamPosition).
  serverSubscribed(ctx = {}) {
    this.state = 'subscribed';
    this.emit('subscribed', { channel: this.channel, recovered: false, wasRecovering: false, ...ctx });
  }

  pushPublication(data, offset) {
    this.emit('publication', { channel: this.channel, data, ...(offset ? { offset } : {}) });
  }

  // Answers the oldest pending history call with [data, offset] pairs (given oldest first;
  // returned newest first when the call asked for reverse).
  answerHistory(pairs, epoch = 'e1') {
    const call = this.historyCalls.shift();
    if (!call) throw new Error('no pending history call');
    let publications = pairs.map(([data, offset]) => ({ data, offset }));
    if (call.opts?.reverse) publications = publications.reverse();
    const offset = pairs.length ? pairs[pairs.length - 1][1] : 0;
    call.resolve({ publications, offset, epoch });
    return call;
  }

  history(opts) {
    return new Promise((resolve, reject) => this.historyCalls.push({ opts, resolve, reject }));
  }

  transportLost() {
    this.state = 'subscribing';
    this.emit('subscribing', { channel: this.channel, code: 1, reason: 'transport closed' });
  }

  pushJoin(client, user) {
    this.emit('join', { channel: this.channel, info: { client, user } });
  }

  pushLeave(client, user) {
    this.emit('leave', { channel: this.channel, info: { client, user } });
  }

  presence() {
    return new Promise((resolve, reject) => this.presenceCalls.push({ resolve, reject }));
  }
}

export class FakeCentrifuge {
  constructor() {
    this.subs = new Map();
    this.rpcCalls = []; // {method, data, resolve, reject}
  }

  newSubscription(channel, options) {
    if (this.subs.has(channel)) throw new Error('duplicate subscription');
    const s = new FakeSubscription(channel, options);
    this.subs.set(channel, s);
    return s;
  }

  getSubscription(channel) {
    return this.subs.get(channel) ?? null;
  }

  removeSubscription(sub) {
    this.subs.delete(sub.channel);
  }

  rpc(method, data) {
    return new Promise((resolve, reject) => this.rpcCalls.push({ method, data, resolve, reject }));
  }

  // Answers the oldest pending rpc with a presence page built from [client, user] pairs.
  answerPage(pairs, nextCursor = '') {
    const call = this.rpcCalls.shift();
    if (!call) throw new Error('no pending rpc');
    const presence = {};
    for (const [client, user, connInfo] of pairs) {
      presence[client] = { client, user, ...(connInfo ? { conn_info: connInfo } : {}) };
    }
    call.resolve({ data: { presence, ...(nextCursor ? { next_cursor: nextCursor } : {}) } });
    return call;
  }
}

// Lets promise callbacks run (the fake resolves synchronously, callbacks are microtasks).
export const flush = () => new Promise((r) => setImmediate(r));
