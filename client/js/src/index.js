// @chorus/client: the centrifuge SDK plus Chorus extras (README.md). ChorusClient wraps one
// Centrifuge instance (exposed as `.centrifuge`, the whole SDK stays available) and adds
// user-level presence, presence paging and sync progress (watchSync), reached through the SDK's `rpc` so the SDK itself
// is used unmodified.

import { Centrifuge } from 'centrifuge';
import { presenceAll, presencePage, presenceUsers } from './presence.js';
import { SyncWatch } from './sync_watch.js';
import { UserSubscription } from './user_subscription.js';

export { UserPresence } from './user_presence.js';
export { UserSubscription } from './user_subscription.js';
export { SyncWatch, parseSyncProgress, SYNC_USER_RE } from './sync_watch.js';
export { toClientInfo } from './presence.js';
export { Centrifuge };

export class ChorusClient {
  // `url`: the node's WebSocket endpoint, ws(s)://host:port/connection/websocket.
  // `options`: Centrifuge options (token, getToken, data, websocket for Node.js, ...).
  constructor(url, options = {}) {
    this.centrifuge = new Centrifuge(url, options);
  }

  // Wraps an existing Centrifuge instance (or an object with the same surface, for tests).
  static wrap(centrifuge) {
    const c = Object.create(ChorusClient.prototype);
    c.centrifuge = centrifuge;
    return c;
  }

  connect() {
    this.centrifuge.connect();
    return this;
  }

  disconnect() {
    this.centrifuge.disconnect();
    return this;
  }

  // A subscription to `channel` that also tracks users (userJoin / userLeave events). Not
  // subscribed yet: call `.subscribe()`. `opts`: SDK SubscriptionOptions plus `snapshot` and
  // `pageLimit` (see UserSubscription). The channel's namespace needs presence and join_leave.
  userSubscription(channel, opts = {}) {
    return new UserSubscription(this.centrifuge, channel, opts);
  }

  // Live progress of `user`'s sync jobs (channel `sync:<user>`): a SyncWatch, not subscribed
  // yet: call `.subscribe()`. `opts`: historyLimit plus SDK SubscriptionOptions.
  watchSync(user, opts = {}) {
    return new SyncWatch(this.centrifuge, user, opts);
  }

  // One page of connection-level presence: {presence: {client: ClientInfo}, nextCursor}.
  presencePage(channel, { cursor = '', limit } = {}) {
    return presencePage(this.centrifuge, channel, { cursor, limit });
  }

  // Every page: {presence: {client: ClientInfo}}.
  presenceAll(channel, { limit } = {}) {
    return presenceAll(this.centrifuge, channel, { limit });
  }

  // Distinct users as the node counts them: {users, numUsers}.
  presenceUsers(channel) {
    return presenceUsers(this.centrifuge, channel);
  }
}
