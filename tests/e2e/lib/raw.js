// A raw WebSocket speaking the JSON protocol by hand (no SDK): every message collected, frames
// split at '\n', the server's `{}` pings answered unless `autoPong` is false.
//
//   const c = await rawConnect(node);
//   c.ws.send(JSON.stringify({ id: 1, connect: { token } }));
//   const reply = await c.reply(1);   // throws when the connection closed first
import assert from 'node:assert/strict';

import WebSocket from 'ws';

import { eventually } from './wait.js';

export async function rawConnect(node, { autoPong = true } = {}) {
  const ws = new WebSocket(node.wsUrl);
  const conn = { ws, messages: [], pings: 0, closed: null };
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false, 'JSON protocol frames are text');
    for (const line of data.toString('utf8').split('\n')) {
      if (!line) continue;
      const msg = JSON.parse(line);
      if (Object.keys(msg).length === 0) {
        conn.pings++;
        if (autoPong) ws.send('{}');
        continue;
      }
      conn.messages.push(msg);
    }
  });
  ws.on('close', (code, reason) => {
    conn.closed = { code, reason: reason.toString() };
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  conn.reply = async (id) => {
    await eventually(() => conn.messages.some((m) => m.id === id) || conn.closed, { message: `reply ${id}` });
    const m = conn.messages.find((x) => x.id === id);
    if (!m) throw new Error(`closed before reply ${id}: ${JSON.stringify(conn.closed)}`);
    return m;
  };
  return conn;
}
