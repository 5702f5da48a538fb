// Starts a real chorusd for a test: a TOML config in a temp dir, port 0 everywhere, the ready
// line parsed from stdout; stop() sends SIGTERM and fails unless the node exits 0 (tests/README.md).
//
//   const node = await ChorusNode.start({ client: { client_insecure: true } });
//   node.wsUrl    ws://127.0.0.1:PORT/connection/websocket
//   await node.api('publish', { channel: 'chat:a', data: { x: 1 } })   // throws ApiError
//   await node.stop()                                                  // asserts exit 0
//   const again = await node.restart()   // a new process on the same HTTP port (state lost)

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

export const CHORUSD_BIN = process.env.CHORUSD_BIN || '/work/main/build/release/broker/node/chorusd';
export const API_KEY = 'e2e-api-key';
export const TOKEN_SECRET = 'e2e-token-secret';

// The fields after chp_publisher (member=, raft=, cluster= since the cluster wiring) are not
// needed here and allowed.
const READY_RE =
  /^chorusd ready node=(\S+) http=(\S+) native=(\S+) chp_command=(\S+) chp_publisher=(\S+)(?: [a-z_]+=\S+)*\s*$/m;

// The `chat` namespace of the tests (the demo's): presence, join/leave, history, recovery,
// client publish.
export const CHAT_NAMESPACE = {
  presence: true,
  join_leave: true,
  history_size: 100,
  history_ttl_ms: 300000,
  allow_recovery: true,
  allow_publish_for_client: true,
};

export class ApiError extends Error {
  constructor(method, status, error) {
    super(`api ${method}: HTTP ${status} ${JSON.stringify(error)}`);
    this.status = status;
    this.code = error?.code;
  }
}

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // a TOML basic string is JSON-compatible
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  throw new Error(`no TOML form for ${JSON.stringify(v)}`);
}

// {section: {key: value}, namespaces: {name: {key: value}}} -> TOML text.
export function toToml(config) {
  let out = '';
  for (const [section, body] of Object.entries(config)) {
    if (section === 'namespaces') {
      for (const [name, opts] of Object.entries(body)) {
        out += `[namespaces.${name}]\n`;
        for (const [k, v] of Object.entries(opts)) out += `${k} = ${tomlValue(v)}\n`;
      }
      continue;
    }
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(body)) out += `${k} = ${tomlValue(v)}\n`;
  }
  return out;
}

function merge(base, extra) {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? merge(base[k] ?? {}, v) : v;
  }
  return out;
}

export function defaultConfig() {
  return {
    node: { log_level: 'info' },
    // Pages are served by chorusd but may dial its WebSocket through lib/proxy.js (another
    // port): the Origin check (http.allowed_origins, default same-origin) must allow that.
    http: { address: '127.0.0.1', port: 0, allowed_origins: ['http://127.0.0.1:*'] },
    api: { key: API_KEY },
    native: { endpoint: 'tcp://127.0.0.1:0' },
    cluster: { chp_command: 'tcp://127.0.0.1:0', chp_publisher: 'tcp://127.0.0.1:0' },
    client: { token_hmac_secret: TOKEN_SECRET },
    namespaces: { chat: CHAT_NAMESPACE },
  };
}

export class ChorusNode {
  // `config`: merged over defaultConfig(). Resolves once the ready line is printed.
  static async start(config = {}, { readyTimeoutMs = 15000 } = {}) {
    if (!existsSync(CHORUSD_BIN)) {
      throw new Error(`chorusd not found at ${CHORUSD_BIN} (set CHORUSD_BIN)`);
    }
    const node = new ChorusNode(merge(defaultConfig(), config));
    await node._spawn(readyTimeoutMs);
    return node;
  }

  constructor(config) {
    this.config = config;
    this.dir = mkdtempSync(join(tmpdir(), 'chorus-e2e-'));
    this.configPath = join(this.dir, 'chorus.toml');
    this.stdout = '';
    this.stderr = '';
    this.proc = null;
    this.exit = null; // {code, signal} once exited
  }

  _spawn(readyTimeoutMs) {
    writeFileSync(this.configPath, toToml(this.config));
    this.stdout = '';
    this.stderr = '';
    this.exit = null;
    const proc = spawn(CHORUSD_BIN, ['--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      this.stderr += d;
      if (process.env.CHORUS_E2E_VERBOSE) process.stderr.write(d);
    });
    let ready = false;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`chorusd not ready after ${readyTimeoutMs} ms\n${this.logs()}`));
      }, readyTimeoutMs);
      proc.stdout.on('data', (d) => {
        this.stdout += d;
        const m = READY_RE.exec(this.stdout);
        if (m && !ready) {
          clearTimeout(timer);
          ready = true;
          [, this.id, this.http, this.native, this.chpCommand, this.chpPublisher] = m;
          resolve();
        }
      });
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`chorusd exited (${code ?? signal}) before ready\n${this.logs()}`));
      });
      proc.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get port() {
    return Number(this.http.split(':').pop());
  }

  get httpUrl() {
    return `http://${this.http}`;
  }

  get wsUrl() {
    return `ws://${this.http}/connection/websocket`;
  }

  logs() {
    const tail = (s) => s.split('\n').slice(-40).join('\n');
    return `--- chorusd stdout ---\n${tail(this.stdout)}\n--- chorusd stderr ---\n${tail(this.stderr)}`;
  }

  // POST /api/<method>; resolves with `result`, throws ApiError on an error answer.
  async api(method, params = {}) {
    const res = await fetch(`${this.httpUrl}/api/${method}`, {
      method: 'POST',
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify(params),
    });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(method, res.status, { message: text });
    }
    if (res.status !== 200 || body.error) throw new ApiError(method, res.status, body.error ?? body);
    return body.result;
  }

  async metrics() {
    const res = await fetch(`${this.httpUrl}/metrics`);
    return res.text();
  }

  // Value of one metric line (`name{labels}` exactly as printed), 0 when absent.
  async metric(nameWithLabels) {
    const text = await this.metrics();
    for (const line of text.split('\n')) {
      const sp = line.lastIndexOf(' ');
      if (sp > 0 && line.slice(0, sp) === nameWithLabels) return Number(line.slice(sp + 1));
    }
    return 0;
  }

  // SIGTERM, then waits; throws unless the node exited with status 0 (a clean shutdown).
  async stop({ timeoutMs = 10000 } = {}) {
    if (!this.proc) return;
    if (!this.exit) this.proc.kill('SIGTERM');
    let timer;
    const exit = await Promise.race([
      this.exited,
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!exit) {
      this.kill();
      await this.exited;
      this.proc = null;
      throw new Error(`chorusd did not exit within ${timeoutMs} ms of SIGTERM (killed)\n${this.logs()}`);
    }
    this.proc = null;
    if (exit.code !== 0) {
      throw new Error(`chorusd exited uncleanly on SIGTERM: ${JSON.stringify(exit)}\n${this.logs()}`);
    }
  }

  // SIGKILL without checks (cleanup after a failure).
  kill() {
    try {
      this.proc?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  // Clean stop, then a fresh process with the same config on the same HTTP port: every
  // channel's state (history, epoch, presence) is lost, as after a node restart.
  async restart({ readyTimeoutMs = 15000 } = {}) {
    await this.stop();
    this.config = merge(this.config, { http: { port: this.port } });
    await this._spawn(readyTimeoutMs);
    return this;
  }

  // Stops (checking the exit) and removes the temp dir.
  async close() {
    try {
      await this.stop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// The SDK options of every test client (Node.js and in-page): quick reconnects so tests do not
// wait for the SDK's default backoff.
export const SDK_TEST_OPTIONS = { timeout: 5000, minReconnectDelay: 50, maxReconnectDelay: 300 };

// A Centrifuge client for Node.js against `node` (the `ws` package as WebSocket).
export function newClient(node, options = {}) {
  return new Centrifuge(node.wsUrl, { websocket: WebSocket, ...SDK_TEST_OPTIONS, ...options });
}

// Connects and resolves on 'connected'; rejects on 'disconnected' (with its code) or timeout.
export function connect(client, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not connected after ${timeoutMs} ms (state ${client.state})`));
    }, timeoutMs);
    const onConnected = (ctx) => {
      cleanup();
      resolve(ctx);
    };
    const onDisconnected = (ctx) => {
      cleanup();
      const err = new Error(`disconnected ${ctx.code} ${ctx.reason}`);
      err.code = ctx.code;
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('connected', onConnected);
      client.off('disconnected', onDisconnected);
    };
    client.on('connected', onConnected);
    client.on('disconnected', onDisconnected);
    client.connect();
  });
}

// Subscribes and resolves with the 'subscribed' context; rejects on 'unsubscribed' or timeout.
export function subscribe(sub, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${sub.channel}: not subscribed after ${timeoutMs} ms (state ${sub.state})`));
    }, timeoutMs);
    const onSubscribed = (ctx) => {
      cleanup();
      resolve(ctx);
    };
    const onUnsubscribed = (ctx) => {
      cleanup();
      const err = new Error(`${sub.channel}: unsubscribed ${ctx.code} ${ctx.reason}`);
      err.code = ctx.code;
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      sub.off('subscribed', onSubscribed);
      sub.off('unsubscribed', onUnsubscribed);
    };
    sub.on('subscribed', onSubscribed);
    sub.on('unsubscribed', onUnsubscribed);
    sub.subscribe();
  });
}

// A ws WebSocket whose connections can be cut and held down, to simulate a network loss:
// `Net.down()` terminates every open socket (an abrupt TCP close, no close frame) and makes new
// ones fail at once (they dial a closed port) until `Net.up()`.
export function gatedWebSocket() {
  const net = { isUp: true, sockets: new Set(), opened: 0 };
  class GatedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(net.isUp ? url : 'ws://127.0.0.1:1/', protocols);
      if (net.isUp) net.opened++;
      net.sockets.add(this);
      this.on('close', () => net.sockets.delete(this));
    }
  }
  net.WebSocket = GatedWebSocket;
  net.down = () => {
    net.isUp = false;
    for (const s of net.sockets) s.terminate();
  };
  net.up = () => {
    net.isUp = true;
  };
  return net;
}

// Runs `body(scope)` with a started node; scope.client(opts) makes tracked SDK clients. Every
// client is disconnected and the node stopped (checking a clean exit) whatever happens; a
// failure carries the node's log tail.
export async function withNode(config, body) {
  const node = await ChorusNode.start(config);
  const clients = [];
  const scope = {
    node,
    client(options) {
      const c = newClient(node, options);
      clients.push(c);
      return c;
    },
  };
  let failure;
  try {
    await body(scope);
  } catch (err) {
    failure = err;
  }
  for (const c of clients) c.disconnect();
  try {
    await node.close();
  } catch (err) {
    if (failure) failure.message += `\nand then: ${err.message.split('\n')[0]}`;
    else failure = err;
  }
  if (failure) {
    if (failure instanceof Error && !String(failure.message).includes('--- chorusd')) {
      failure.message += `\n${node.logs()}`;
    }
    throw failure;
  }
}
