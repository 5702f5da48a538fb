// node.log_level applies to every logger from the first line: with "warn" a start, a WebSocket
// session and a stop print nothing at info level (the gateway's startup lines included).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChorusNode, connect, newClient } from '../lib/harness.js';

test('log_level warn: no info lines from any logger', async () => {
  const node = await ChorusNode.start({ node: { log_level: 'warn' }, client: { client_insecure: true } });
  try {
    const c = newClient(node);
    await connect(c);
    c.disconnect();
  } finally {
    await node.close();
  }
  assert.doesNotMatch(node.stderr, /\[info\]/, `info lines printed:\n${node.stderr}`);
});
