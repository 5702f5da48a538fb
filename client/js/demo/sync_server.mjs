// The demo's sync endpoint (README.md "Demo: the sync panel"). DEMO ONLY.
//
// The page must not hold the node's API key, and sync_submit is a server API method. A real
// application's backend submits syncs for the users it has authenticated; this tiny HTTP server
// plays that backend for the demo: it takes the page's connection token (the demo's public
// HS256 secret signs it, so in the demo anyone can be anyone — the same trust as the chat),
// verifies it, and calls the node's sync_submit / sync_status / sync_cancel with the API key
// for the token's user only, with a source chosen from its own list and one fixed catalog.
//
//   POST /submit  {source, tier}   Authorization: Bearer <token>  -> {job}
//   POST /cancel  {job}            Authorization: Bearer <token>  -> {}   (the user's jobs only)
//   POST /jobs    {}               Authorization: Bearer <token>  -> {jobs: [{job, source}]}
//                                  (the user's last jobs on the node, to label the bars)
//   GET  /sources                                                 -> {sources: [name...], tiers}
// CORS: only `origin` (the page's, i.e. the node's HTTP address) may call it from a browser.
//
// Used by scripts/run-demo.sh (command line below) and tests/e2e/browser/demo_sync.test.js
// (startSyncServer). Node >= 20, no dependencies.
//   DEMO_API_KEY=... node demo/sync_server.mjs --api http://127.0.0.1:8000 \
//     --origin http://127.0.0.1:8000 --sources DIR [--secret S] [--port 0] [--catalog demo]
//   prints "sync-server ready url=http://127.0.0.1:PORT" and serves until killed.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const kMaxBody = 4096;
const kUserRe = /^[A-Za-z0-9_.@-]{1,128}$/; // the node's rule for sync users
const kNameRe = /^[A-Za-z0-9_-]{1,64}$/;
export const DEMO_TIERS = ['normal', 'premium'];

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// The user (`sub`) of an HS256 token signed with `secret`, or throws. Checks alg, signature
// and exp, as the node does for connection tokens (docs/broker-node.md).
export function verifyDemoToken(token, secret, nowSec = Math.floor(Date.now() / 1000)) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new Error('not a JWT');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  if (header.alg !== 'HS256') throw new Error('alg must be HS256');
  const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Error('bad signature');
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  if (typeof claims.exp === 'number' && claims.exp <= nowSec) throw new Error('token expired');
  if (typeof claims.sub !== 'string' || !kUserRe.test(claims.sub)) {
    throw new Error('the token user cannot sync (letters, digits and _.@- only)');
  }
  return claims.sub;
}

// Test helper: an HS256 token for `sub`.
export function signDemoToken(claims, secret) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  return `${head}.${body}.${b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest())}`;
}

// Makes source trees under `root`: {name: {files, bytes}}. Files are sparse (no disk used; the
// sync still reads and hashes every byte), spread over subdirectories of 100.
export function makeDemoSources(root, spec) {
  for (const [name, { files, bytes }] of Object.entries(spec)) {
    for (let i = 0; i < files; i++) {
      const dir = join(root, name, `part-${String(Math.floor(i / 100)).padStart(3, '0')}`);
      if (i % 100 === 0) mkdirSync(dir, { recursive: true });
      const file = join(dir, `file-${String(i).padStart(5, '0')}.bin`);
      writeFileSync(file, `${name} ${i}\n`);
      if (bytes > 64) truncateSync(file, bytes);
    }
  }
}

export function listSources(root) {
  return readdirSync(root)
    .filter((n) => kNameRe.test(n) && statSync(join(root, n)).isDirectory())
    .sort();
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    const onData = (c) => {
      size += c.length;
      if (size <= kMaxBody) return chunks.push(c);
      // Refuse; the rest is read and dropped (the answer closes the connection).
      req.off('data', onData);
      req.resume();
      return reject(Object.assign(new Error('body too large'), { status: 413 }));
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Starts the endpoint; resolves {url, close()}. `api`: the node's HTTP base URL.
export async function startSyncServer({
  api, apiKey, secret, sourcesRoot, origin, catalog = 'demo', host = '127.0.0.1', port = 0,
}) {
  const callApi = async (method, params) => {
    const res = await fetch(`${api}/api/${method}`, {
      method: 'POST',
      headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify(params),
    });
    return { status: res.status, body: await res.json() };
  };
  const handle = async (req) => {
    if (req.method === 'GET' && req.url === '/sources') {
      return { status: 200, body: { sources: listSources(sourcesRoot), tiers: DEMO_TIERS } };
    }
    if (req.method !== 'POST' || !['/submit', '/cancel', '/jobs'].includes(req.url)) {
      return { status: 404, body: { error: { message: 'not found' } } };
    }
    const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    let user;
    try {
      user = verifyDemoToken(auth?.[1], secret);
    } catch (e) {
      return { status: 401, body: { error: { message: `token: ${e.message}` } } };
    }
    let params;
    try {
      params = JSON.parse(await readBody(req));
    } catch (e) {
      return { status: e.status ?? 400, body: { error: { message: `body: ${e.message}` } } };
    }
    if (req.url === '/submit') {
      const { source, tier = 'normal' } = params ?? {};
      if (typeof source !== 'string' || !listSources(sourcesRoot).includes(source)) {
        return { status: 400, body: { error: { message: `unknown source ${JSON.stringify(source)}` } } };
      }
      if (!DEMO_TIERS.includes(tier)) {
        return { status: 400, body: { error: { message: `unknown tier ${JSON.stringify(tier)}` } } };
      }
      const r = await callApi('sync_submit', { user, tier, source: join(sourcesRoot, source), catalog });
      return { status: r.status, body: r.body.result ? { ...r.body.result, source } : r.body };
    }
    if (req.url === '/jobs') {
      const r = await callApi('sync_status', { user });
      if (r.status !== 200) return r;
      const prefix = `${sourcesRoot.replace(/\/+$/, '')}/`;
      const jobs = (r.body.result?.jobs ?? []).map((j) => ({
        job: j.id,
        source: j.source.startsWith(prefix) ? j.source.slice(prefix.length) : j.source,
      }));
      return { status: 200, body: { jobs } };
    }
    const job = params?.job;
    if (!Number.isSafeInteger(job) || job <= 0) {
      return { status: 400, body: { error: { message: 'job must be a positive integer' } } };
    }
    const st = await callApi('sync_status', { job });
    if (st.status !== 200 || st.body.result?.job?.user !== user) {
      return { status: 404, body: { error: { message: `no job ${job} of ${user}` } } };
    }
    const r = await callApi('sync_cancel', { job });
    return { status: r.status, body: r.body.result ?? r.body };
  };

  const server = createServer((req, res) => {
    const headers = {
      'Content-Type': 'application/json',
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Headers': 'Authorization, Content-Type',
      'Access-Control-Allow-Methods': 'GET, POST',
      Vary: 'Origin',
      Connection: 'close',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, headers).end();
      return;
    }
    handle(req).then(
      ({ status, body }) => res.writeHead(status, headers).end(JSON.stringify(body)),
      (e) => res.writeHead(502, headers).end(JSON.stringify({ error: { message: `node: ${e.message}` } })),
    );
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
    if (dflt === undefined) throw new Error(`sync_server: --${name} is required`);
    return dflt;
  };
  const apiKey = process.env.DEMO_API_KEY;
  if (!apiKey) throw new Error('sync_server: set DEMO_API_KEY');
  const s = await startSyncServer({
    api: arg('api'),
    apiKey,
    secret: arg('secret', 'chorus-demo-secret'),
    sourcesRoot: arg('sources'),
    origin: arg('origin'),
    catalog: arg('catalog', 'demo'),
    port: Number(arg('port', '0')),
  });
  console.log(`sync-server ready url=${s.url}`);
  const stop = () => s.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
