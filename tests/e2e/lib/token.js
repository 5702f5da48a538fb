// HS256 connection tokens for tests, made with node:crypto (independent of the demo's signer).
import { createHmac } from 'node:crypto';

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

export function hs256(claims, secret) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

// A token for `user` valid `ttlS` seconds (negative: already expired).
export function userToken(user, secret, { ttlS = 3600, info } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: user, iat: now, exp: now + ttlS };
  if (info !== undefined) claims.info = info;
  return hs256(claims, secret);
}

// Tokens the node must refuse with 3500 (W-13), by name: signed with another secret, alg none
// (no signature), not a JWT at all.
export function invalidTokens(user) {
  const exp = Math.floor(Date.now() / 1000) + 60;
  return {
    badSignature: userToken(user, 'not-the-secret'),
    none: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: user, exp })}.`,
    garbage: 'not.a.jwt',
  };
}
