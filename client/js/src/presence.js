// Chorus presence extras over the SDK's `rpc` (docs/protocol/websocket.md, W-20):
//   chorus.presence_page  {channel, cursor, limit} -> {presence: {client: info}, next_cursor}
//   chorus.presence_users {channel}                -> {users: [...], num_users}
// Presence entries come in the wire form (conn_info, chan_info) and are returned in the SDK's
// ClientInfo form (connInfo, chanInfo), as `subscription.presence()` returns them.

// Wire ClientInfo -> SDK ClientInfo.
export function toClientInfo(raw) {
  const info = { client: raw.client ?? '', user: raw.user ?? '' };
  const connInfo = raw.conn_info ?? raw.connInfo;
  const chanInfo = raw.chan_info ?? raw.chanInfo;
  if (connInfo !== undefined) info.connInfo = connInfo;
  if (chanInfo !== undefined) info.chanInfo = chanInfo;
  return info;
}

// One page: entries with client id > cursor, at most `limit` (the node caps it at the
// namespace's presence_page_size). `nextCursor` is '' after the last page.
export async function presencePage(centrifuge, channel, { cursor = '', limit } = {}) {
  const params = { channel };
  if (cursor) params.cursor = cursor;
  if (limit !== undefined) params.limit = limit;
  const { data } = await centrifuge.rpc('chorus.presence_page', params);
  const presence = {};
  for (const [client, raw] of Object.entries(data?.presence ?? {})) {
    presence[client] = toClientInfo({ client, ...raw });
  }
  return { presence, nextCursor: data?.next_cursor ?? '' };
}

// Every page, in client id order. An entry present during the whole iteration is returned
// exactly once (broker-core.md, "Presence"); entries added or removed meanwhile may or may not
// be. Throws if the node's cursor does not advance (a node bug would otherwise loop forever).
export async function presenceAll(centrifuge, channel, { limit } = {}) {
  const presence = {};
  let cursor = '';
  for (;;) {
    const page = await presencePage(centrifuge, channel, { cursor, limit });
    Object.assign(presence, page.presence);
    if (!page.nextCursor) return { presence };
    if (page.nextCursor <= cursor) {
      throw new Error(`chorus.presence_page: cursor did not advance (${cursor} -> ${page.nextCursor})`);
    }
    cursor = page.nextCursor;
  }
}

// The distinct users of the channel, computed by the node (anonymous connections count as one
// user, ""). `users` may be capped by the node; `numUsers` is the exact count.
export async function presenceUsers(centrifuge, channel) {
  const { data } = await centrifuge.rpc('chorus.presence_users', { channel });
  return { users: data?.users ?? [], numUsers: data?.num_users ?? 0 };
}
