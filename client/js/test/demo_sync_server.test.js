// The demo's sync endpoint (demo/sync_server.mjs) against a fake node API: token checks, the
// user taken from the token, sources from its own list, cancel only of the user's own jobs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  makeDemoSources,
  signDemoToken,
  startSyncServer,
  verifyDemoToken,
} from '../demo/sync_server.mjs';

const SECRET = 'demo-secret';
const now = () => Math.floor(Date.now() / 1000);
const tokenFor = (sub, exp = now() + 600) => signDemoToken({ sub, exp }, SECRET);

describe('verifyDemoToken', () => {
  test('returns the user of a good token', () => {
    assert.equal(verifyDemoToken(tokenFor('alice'), SECRET), 'alice');
  });
  test('refuses a bad signature, alg none, an expired token, a user the node refuses', () => {
    assert.throws(() => verifyDemoToken(tokenFor('alice'), 'other'), /bad signature/);
    const [, body] = tokenFor('alice').split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.`;
    assert.throws(() => verifyDemoToken(none, SECRET), /HS256/);
    assert.throws(() => verifyDemoToken(tokenFor('alice', now() - 1), SECRET), /expired/);
    assert.throws(() => verifyDemoToken(tokenFor('al ice'), SECRET), /cannot sync/);
    assert.throws(() => verifyDemoToken('garbage', SECRET), /not a JWT/);
    assert.throws(() => verifyDemoToken(undefined, SECRET), /not a JWT/);
  });
});

describe('startSyncServer', () => {
  let root;
  let api;
  let calls;
  let server;
  const jobs = new Map([[7, 'alice'], [8, 'bob']]);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'chorus-demo-sync-'));
    makeDemoSources(join(root, 'src'), { docs: { files: 3, bytes: 10 }, photos: { files: 101, bytes: 100 } });
    calls = [];
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const params = JSON.parse(body);
        calls.push({ method: req.url, key: req.headers['x-api-key'], params });
        let out = { result: {} };
        if (req.url === '/api/sync_submit') out = { result: { job: 9 } };
        if (req.url === '/api/sync_status' && params.user) {
          const src = (name) => join(root, 'src', name);
          out = { result: { jobs: [{ id: 3, user: params.user, source: src('photos') }, { id: 2, user: params.user, source: '/elsewhere/x' }] } };
          res.writeHead(200).end(JSON.stringify(out));
          return;
        }
        if (req.url === '/api/sync_status') {
          const user = jobs.get(params.job);
          if (!user) {
            res.writeHead(404).end(JSON.stringify({ error: { code: 107, message: 'unknown job' } }));
            return;
          }
          out = { result: { job: { id: params.job, user } } };
        }
        res.writeHead(200).end(JSON.stringify(out));
      });
    });
    await new Promise((r) => api.listen(0, '127.0.0.1', r));
    server = await startSyncServer({
      api: `http://127.0.0.1:${api.address().port}`,
      apiKey: 'k',
      secret: SECRET,
      sourcesRoot: join(root, 'src'),
      origin: 'http://127.0.0.1:1234',
    });
  });

  after(async () => {
    await server.close();
    await new Promise((r) => api.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  const post = async (path, body, token = tokenFor('alice')) => {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json(), cors: res.headers.get('access-control-allow-origin') };
  };

  test('lists its sources and tiers, for the configured origin only', async () => {
    const res = await fetch(`${server.url}/sources`);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://127.0.0.1:1234');
    assert.deepEqual(await res.json(), { sources: ['docs', 'photos'], tiers: ['normal', 'premium'] });
  });

  test('submits for the token user with the API key, a listed source and the fixed catalog', async () => {
    calls.length = 0;
    const r = await post('/submit', { source: 'photos', tier: 'premium', user: 'mallory' });
    assert.deepEqual(r.body, { job: 9, source: 'photos' });
    assert.deepEqual(calls, [
      {
        method: '/api/sync_submit',
        key: 'k',
        params: { user: 'alice', tier: 'premium', source: join(root, 'src', 'photos'), catalog: 'demo' },
      },
    ]);
  });

  test('refuses without a good token, an unknown source or tier, a bad body; calls nothing', async () => {
    calls.length = 0;
    assert.equal((await post('/submit', { source: 'docs' }, null)).status, 401);
    assert.equal((await post('/submit', { source: 'docs' }, signDemoToken({ sub: 'alice' }, 'x'))).status, 401);
    assert.equal((await post('/submit', { source: '../etc' })).status, 400);
    assert.equal((await post('/submit', { source: 'docs', tier: 'gold' })).status, 400);
    assert.equal((await post('/submit', '{not json')).status, 400);
    assert.equal((await post('/submit', 'x'.repeat(5000))).status, 413);
    assert.equal((await post('/other', {})).status, 404);
    assert.deepEqual(calls, []);
  });

  test("lists the token user's jobs with source names", async () => {
    calls.length = 0;
    const r = await post('/jobs', {});
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { jobs: [{ job: 3, source: 'photos' }, { job: 2, source: '/elsewhere/x' }] });
    assert.deepEqual(calls.map((c) => c.params), [{ user: 'alice' }]);
    assert.equal((await post('/jobs', {}, null)).status, 401);
  });

  test("cancels the user's own job only", async () => {
    calls.length = 0;
    assert.equal((await post('/cancel', { job: 7 })).status, 200);
    assert.deepEqual(calls.map((c) => c.method), ['/api/sync_status', '/api/sync_cancel']);
    calls.length = 0;
    assert.equal((await post('/cancel', { job: 8 })).status, 404); // bob's
    assert.equal((await post('/cancel', { job: 99 })).status, 404);
    assert.equal((await post('/cancel', { job: 'x' })).status, 400);
    assert.deepEqual(calls.map((c) => c.method), ['/api/sync_status', '/api/sync_status']);
  });
});
