// Types of @chorus/client (src/index.js). SDK types come from the `centrifuge` package.
import type {
  Centrifuge,
  ClientInfo,
  Options,
  Subscription,
  SubscriptionOptions,
} from 'centrifuge';

export { Centrifuge };

/** Connection-level presence of one page. */
export interface PresencePage {
  /** Client id -> ClientInfo. */
  presence: Record<string, ClientInfo>;
  /** Cursor for the next page; '' after the last page. */
  nextCursor: string;
}

export interface PresenceUsers {
  users: string[];
  numUsers: number;
}

export interface UserEventContext {
  channel: string;
  user: string;
  /** The connection that made the user appear (join) or disappear (leave). */
  info: ClientInfo;
  /** True when found by the snapshot read after a (re)subscribe, false for a join/leave push
   * (or an unsubscribe). */
  snapshot: boolean;
}

export interface UserSyncContext {
  channel: string;
  users: string[];
}

export interface UserSubscriptionErrorContext {
  channel: string;
  type: 'snapshot';
  error: unknown;
}

export interface UserSubscriptionEvents {
  userJoin: (ctx: UserEventContext) => void;
  userLeave: (ctx: UserEventContext) => void;
  sync: (ctx: UserSyncContext) => void;
  error: (ctx: UserSubscriptionErrorContext) => void;
}

export interface UserSubscriptionOptions extends Partial<SubscriptionOptions> {
  /** Where the connection snapshot comes from after each (re)subscribe.
   * 'pages' (default): chorus.presence_page, every page. 'presence': subscription.presence()
   * (works on plain Centrifugo; on Chorus capped at the namespace's presence_page_size). */
  snapshot?: 'pages' | 'presence';
  /** Entries per chorus.presence_page call (default: the node's page size). */
  pageLimit?: number;
}

export declare class UserSubscription {
  readonly channel: string;
  /** The SDK subscription (publications, history, publish, state events). */
  readonly subscription: Subscription;
  on<E extends keyof UserSubscriptionEvents>(event: E, fn: UserSubscriptionEvents[E]): this;
  once<E extends keyof UserSubscriptionEvents>(event: E, fn: UserSubscriptionEvents[E]): this;
  off<E extends keyof UserSubscriptionEvents>(event: E, fn: UserSubscriptionEvents[E]): this;
  removeAllListeners(event?: keyof UserSubscriptionEvents): this;
  subscribe(): this;
  unsubscribe(): this;
  /** Unsubscribes, removes the SDK subscription from the client, drops listeners. */
  destroy(): void;
  /** Users present, sorted. */
  users(): string[];
  hasUser(user: string): boolean;
  /** Number of connections of `user` in the channel. */
  connections(user: string): number;
  readonly numUsers: number;
  readonly numClients: number;
  /** True when the users reflect a snapshot of the current subscription. */
  readonly synced: boolean;
  /** Resolves with the users once synced; rejects after timeoutMs (default 5000). */
  whenSynced(timeoutMs?: number): Promise<string[]>;
}

export interface UserPresenceEvent {
  type: 'join' | 'leave';
  user: string;
  info: ClientInfo;
}

/** Pure user-level presence state (no I/O); what UserSubscription is built on. */
export declare class UserPresence {
  readonly synced: boolean;
  readonly snapshotPending: boolean;
  readonly numClients: number;
  readonly numUsers: number;
  users(): string[];
  hasUser(user: string): boolean;
  connections(user: string): number;
  clients(): ClientInfo[];
  beginSnapshot(): void;
  applySnapshot(entries: ClientInfo[]): UserPresenceEvent[];
  join(info: ClientInfo): UserPresenceEvent[];
  leave(info: ClientInfo): UserPresenceEvent[];
  clear(): UserPresenceEvent[];
  suspend(): void;
}

/** Wire ClientInfo (conn_info, chan_info) -> SDK ClientInfo (connInfo, chanInfo). */
export declare function toClientInfo(raw: Record<string, unknown>): ClientInfo;

export declare class ChorusClient {
  /** `url`: ws(s)://host:port/connection/websocket; `options`: Centrifuge options. */
  constructor(url: string, options?: Partial<Options>);
  /** Wraps an existing Centrifuge instance. */
  static wrap(centrifuge: Centrifuge): ChorusClient;
  readonly centrifuge: Centrifuge;
  connect(): this;
  disconnect(): this;
  userSubscription(channel: string, opts?: UserSubscriptionOptions): UserSubscription;
  presencePage(channel: string, opts?: { cursor?: string; limit?: number }): Promise<PresencePage>;
  presenceAll(channel: string, opts?: { limit?: number }): Promise<{ presence: Record<string, ClientInfo> }>;
  presenceUsers(channel: string): Promise<PresenceUsers>;
}
