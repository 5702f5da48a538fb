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

/** One job's state, from a `sync_progress` publication on `sync:<user>`. */
export interface SyncProgress {
  job: number;
  user: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** 'listing' (running, nothing listed yet), 'syncing', or the state. */
  phase: 'queued' | 'listing' | 'syncing' | 'succeeded' | 'failed' | 'cancelled';
  /** Files synchronised, failed, and in the job's listing. */
  done: number;
  failed: number;
  total: number;
  /** Files finished per second since the submit. */
  rate: number;
  /** Remaining time at that rate; null while unknown, 0 in the final event. */
  etaMs: number | null;
  /** True in the job's last event. */
  final: boolean;
  /** The job's error messages (final event only; else []). */
  errors: string[];
  /** 0..100: (done + failed) / total, 100 in the final event. */
  percent: number;
  /** The publication's offset in the channel's stream (0 if unknown). */
  offset: number;
  /** True when read from history rather than received live (or recovered). */
  fromHistory: boolean;
}

export interface SyncWatchSyncContext {
  channel: string;
  jobs: SyncProgress[];
}

export interface SyncWatchErrorContext {
  channel: string;
  /** 'history': the history read failed (retried with backoff); 'event': a publication on the
   * channel was not a progress event (ignored). */
  type: 'history' | 'event';
  error: unknown;
}

export interface SyncWatchEvents {
  progress: (p: SyncProgress) => void;
  final: (p: SyncProgress) => void;
  sync: (ctx: SyncWatchSyncContext) => void;
  error: (ctx: SyncWatchErrorContext) => void;
}

export interface SyncWatchOptions extends Partial<SubscriptionOptions> {
  /** Events read from history after a subscribe without recovery (default 100). */
  historyLimit?: number;
}

export declare class SyncWatch {
  readonly user: string;
  /** `sync:<user>`. */
  readonly channel: string;
  /** The SDK subscription (recoverable). */
  readonly subscription: Subscription;
  on<E extends keyof SyncWatchEvents>(event: E, fn: SyncWatchEvents[E]): this;
  once<E extends keyof SyncWatchEvents>(event: E, fn: SyncWatchEvents[E]): this;
  off<E extends keyof SyncWatchEvents>(event: E, fn: SyncWatchEvents[E]): this;
  removeAllListeners(event?: keyof SyncWatchEvents): this;
  subscribe(): this;
  unsubscribe(): this;
  destroy(): void;
  /** Latest state of every job seen in this epoch, newest job first. */
  jobs(): SyncProgress[];
  job(id: number): SyncProgress | null;
  readonly synced: boolean;
  whenSynced(timeoutMs?: number): Promise<SyncProgress[]>;
}

/** Parses a publication's data into a SyncProgress; throws TypeError when it is not one. */
export declare function parseSyncProgress(
  data: unknown,
  offset?: number,
): Omit<SyncProgress, 'fromHistory'>;
export declare const SYNC_USER_RE: RegExp;

export declare class ChorusClient {
  /** `url`: ws(s)://host:port/connection/websocket; `options`: Centrifuge options. */
  constructor(url: string, options?: Partial<Options>);
  /** Wraps an existing Centrifuge instance. */
  static wrap(centrifuge: Centrifuge): ChorusClient;
  readonly centrifuge: Centrifuge;
  connect(): this;
  disconnect(): this;
  userSubscription(channel: string, opts?: UserSubscriptionOptions): UserSubscription;
  /** Live progress of `user`'s sync jobs (channel `sync:<user>`); call `.subscribe()`. */
  watchSync(user: string, opts?: SyncWatchOptions): SyncWatch;
  presencePage(channel: string, opts?: { cursor?: string; limit?: number }): Promise<PresencePage>;
  presenceAll(channel: string, opts?: { limit?: number }): Promise<{ presence: Record<string, ClientInfo> }>;
  presenceUsers(channel: string): Promise<PresenceUsers>;
}
