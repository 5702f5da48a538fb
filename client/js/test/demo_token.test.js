// The demo's in-page HS256 signer agrees with node:crypto.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';

import { hmacSha256, sha256, signHs256 } from '../demo/token.js';

const hex = (u8) => Buffer.from(u8).toString('hex');

test('sha256 matches node:crypto for lengths around block boundaries', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const data = Buffer.alloc(n, n % 251);
    assert.equal(hex(sha256(new Uint8Array(data))), createHash('sha256').update(data).digest('hex'), `n=${n}`);
  }
});

test('hmacSha256 matches node:crypto, short and long keys', () => {
  for (const key of ['k', 'x'.repeat(64), 'y'.repeat(100)]) {
    const msg = Buffer.from('a message');
    assert.equal(
      hex(hmacSha256(new Uint8Array(Buffer.from(key)), new Uint8Array(msg))),
      createHmac('sha256', key).update(msg).digest('hex'),
    );
  }
});

test('signHs256 produces a verifiable JWT', () => {
  const jwt = signHs256({ sub: 'zoë', exp: 2000000000 }, 'secret');
  const [h, b, s] = jwt.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url')), { alg: 'HS256', typ: 'JWT' });
  assert.deepEqual(JSON.parse(Buffer.from(b, 'base64url')), { sub: 'zoë', exp: 2000000000 });
  assert.equal(s, createHmac('sha256', 'secret').update(`${h}.${b}`).digest('base64url'));
});
