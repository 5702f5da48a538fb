// RS256 connection tokens with the real centrifuge SDK: the node checks them with the PEM public
// key in `client.token_rsa_public_key_file` (HS256 stays accepted beside it); a token signed by
// another key, or an RS256 token presented to a node without a public key, closes with 3500.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { TOKEN_SECRET, connect, subscribe, withNode } from '../lib/harness.js';
import { userToken } from '../lib/token.js';

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

function rs256(claims, privateKey) {
  const head = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${sign('sha256', Buffer.from(head), privateKey).toString('base64url')}`;
}

const keyPair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const dir = mkdtempSync(join(tmpdir(), 'chorus-rs256-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('RS256 tokens', () => {
  const { publicKey, privateKey } = keyPair();
  const pemPath = join(dir, 'public.pem');
  writeFileSync(pemPath, publicKey.export({ type: 'spki', format: 'pem' }));
  const now = () => Math.floor(Date.now() / 1000);

  test('a token signed with the key connects as its subject; HS256 still works', () =>
    withNode({ client: { token_rsa_public_key_file: pemPath } }, async ({ client }) => {
      const c = client({ token: rs256({ sub: 'rita', exp: now() + 600, info: { n: 1 } }, privateKey) });
      const ctx = await connect(c);
      const sub = c.newSubscription('chat:rs');
      await subscribe(sub);
      const { clients } = await sub.presence();
      assert.equal(clients[ctx.client].user, 'rita');
      assert.deepEqual(clients[ctx.client].connInfo, { n: 1 });
      const h = client({ token: userToken('hugo', TOKEN_SECRET) });
      await connect(h);
    }));

  test('another key, or no public key configured: closed with 3500', () =>
    withNode({ client: { token_rsa_public_key_file: pemPath } }, async ({ client }) => {
      const other = keyPair().privateKey;
      const err = await connect(client({ token: rs256({ sub: 'mallory', exp: now() + 600 }, other) })).then(
        () => assert.fail('connected with a token of another key'),
        (e) => e,
      );
      assert.equal(err.code, 3500);
    }).then(() =>
      withNode({}, async ({ client }) => {
        const err = await connect(client({ token: rs256({ sub: 'rita', exp: now() + 600 }, privateKey) })).then(
          () => assert.fail('connected with RS256 on a node without a public key'),
          (e) => e,
        );
        assert.equal(err.code, 3500);
      }),
    ));
});
