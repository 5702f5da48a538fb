// The real centrifuge SDK (node_modules/centrifuge/dist/centrifuge.js, the browser bundle) run
// inside a headless Chromium page, driven from Node.js. The page is lib/blank/index.html served
// by chorusd (http.static_dir); the SDK is added with page.addScriptTag and every client or
// subscription made in the page records its events in `window.e2e.events[id]`, which the Node
// side reads and polls with deadlines (lib/wait.js), never sleeps.
//
//   const browser = sharedChromium();                     // one Chromium per test file
//   test('…', () => withBrowserNode(browser, config, async ({ node, open }) => {
//     const page = await open();                          // an SdkPage
//     const c = await page.client({ user: 'alice' });     // new Centrifuge(node.wsUrl, …) in the page
//     await c.connect();                                  // throws with .code on 'disconnected'
//     const s = await c.subscription('chat:a');
//     await s.subscribe();
//     await s.publish({ text: 'hi' });                    // SDK errors rethrown with .code
//     await s.waitCount('publication', 1);
//     (await s.events('publication'))[0].ctx.data         // {text: 'hi'}
//   }));
//
// Recorded contexts are JSON snapshots taken at emit time; a string field named `pad` is
// recorded as its length (the slow-client test publishes 60 kB pads).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { before, after } from 'node:test';

import { launchChromium } from './browser.js';
import { SDK_TEST_OPTIONS, TOKEN_SECRET, withNode } from './harness.js';
import { userToken } from './token.js';
import { eventually } from './wait.js';

const here = dirname(fileURLToPath(import.meta.url));
export const BLANK_SITE = join(here, 'blank');
// The package's require entry is build/index.js; the browser bundle sits beside it in dist/.
export const SDK_BUNDLE = join(dirname(createRequire(import.meta.url).resolve('centrifuge')), '../dist/centrifuge.js');

// 'subscribed' and 'publication' on a client are its server-side subscriptions' (W-25).
const CLIENT_EVENTS = ['state', 'connecting', 'connected', 'disconnected', 'error', 'subscribed', 'publication'];
const SUB_EVENTS = ['state', 'subscribing', 'subscribed', 'unsubscribed', 'error', 'publication', 'join', 'leave'];

// Runs in the page (serialised by page.evaluate): defines window.e2e.
function installInPage({ clientEvents, subEvents }) {
  const objects = {};
  const events = {};
  const tokenCalls = {};
  let next = 0;
  const snap = (ctx) =>
    ctx === undefined ? null : JSON.parse(JSON.stringify(ctx, (k, v) => (k === 'pad' && typeof v === 'string' ? v.length : v)));
  const track = (obj, names) => {
    const id = `o${++next}`;
    objects[id] = obj;
    events[id] = [];
    for (const event of names) obj.on(event, (ctx) => events[id].push({ event, ctx: snap(ctx) }));
    return id;
  };
  const only = (id, event) => (event ? events[id].filter((e) => e.event === event) : events[id]);
  window.e2e = {
    // `refreshTokens`: getToken answers them in turn (the last one again when used up).
    newClient(url, options, refreshTokens) {
      const opts = { ...options };
      let id;
      if (refreshTokens) {
        let i = 0;
        opts.getToken = async () => {
          tokenCalls[id] = (tokenCalls[id] ?? 0) + 1;
          return refreshTokens[Math.min(i++, refreshTokens.length - 1)];
        };
      }
      id = track(new window.Centrifuge(url, opts), clientEvents);
      return id;
    },
    newSubscription(clientId, channel, options) {
      return track(objects[clientId].newSubscription(channel, options), subEvents);
    },
    // A method of a client or subscription; resolves with {ok} or {err: {code, message}} (the
    // SDK rejects with plain objects, whose code page.evaluate would drop).
    async call(id, method, args) {
      try {
        return { ok: snap(await objects[id][method](...args)) };
      } catch (e) {
        return { err: { code: e?.code, message: e?.message ?? String(e) } };
      }
    },
    state: (id) => objects[id].state,
    tokenCalls: (id) => tokenCalls[id] ?? 0,
    count: (id, event) => only(id, event).length,
    events: (id, event, from) => only(id, event).slice(from),
  };
}

// A client or subscription living in the page, by its id there.
class PageObject {
  constructor(page, id, label) {
    this.page = page;
    this.id = id;
    this.label = label;
  }

  // Calls `method(...args)` in the page; an SDK rejection is rethrown as an Error with `.code`.
  async call(method, ...args) {
    const r = await this.page.evaluate(([id, m, a]) => window.e2e.call(id, m, a), [this.id, method, args]);
    if (r.err) {
      const err = new Error(`${this.label}.${method}: ${r.err.code} ${r.err.message}`);
      err.code = r.err.code;
      throw err;
    }
    return r.ok;
  }

  state() {
    return this.page.evaluate((id) => window.e2e.state(id), this.id);
  }

  // Recorded [{event, ctx}], all or those of one event, from index `from` of that list.
  events(event, from = 0) {
    return this.page.evaluate(([id, e, f]) => window.e2e.events(id, e, f), [this.id, event, from]);
  }

  count(event) {
    return this.page.evaluate(([id, e]) => window.e2e.count(id, e), [this.id, event]);
  }

  // Resolves when `event` was recorded `n` times; more than `n` fails (at once).
  async waitCount(event, n, { timeoutMs = 10000 } = {}) {
    let seen = 0;
    await eventually(async () => (seen = await this.count(event)) >= n, {
      timeoutMs,
      intervalMs: 20,
      message: `${this.label}: ${n} ${event} events`,
      describe: () => `${seen}`,
    });
    if (seen > n) {
      throw new Error(`${this.label}: ${seen} ${event} events, expected ${n}: ${JSON.stringify(await this.events(event))}`);
    }
  }

  // The first of `names` recorded at or after index `from` of the whole event list.
  async nextOf(names, from, { timeoutMs = 10000 } = {}) {
    let found;
    await eventually(
      async () => {
        found = (await this.events(undefined, from)).find((e) => names.includes(e.event));
        return found;
      },
      { timeoutMs, intervalMs: 20, message: `${this.label}: one of ${names.join('/')}` },
    );
    return found;
  }
}

export class PageClient extends PageObject {
  // connect() and resolves with the 'connected' context; throws (with .code) on 'disconnected'.
  async connect(opts) {
    const from = await this.count();
    await this.call('connect');
    const e = await this.nextOf(['connected', 'disconnected'], from, opts);
    if (e.event === 'disconnected') {
      const err = new Error(`${this.label}: disconnected ${e.ctx.code} ${e.ctx.reason}`);
      err.code = e.ctx.code;
      throw err;
    }
    return e.ctx;
  }

  disconnect() {
    return this.call('disconnect');
  }

  tokenCalls() {
    return this.page.evaluate((id) => window.e2e.tokenCalls(id), this.id);
  }

  async subscription(channel, options = {}) {
    const id = await this.page.evaluate(([c, ch, o]) => window.e2e.newSubscription(c, ch, o), [this.id, channel, options]);
    return new PageSubscription(this.page, id, `${this.label}/${channel}`);
  }
}

export class PageSubscription extends PageObject {
  // subscribe() and resolves with the 'subscribed' context; throws (with .code) on 'unsubscribed'.
  async subscribe(opts) {
    const from = await this.count();
    await this.call('subscribe');
    const e = await this.nextOf(['subscribed', 'unsubscribed'], from, opts);
    if (e.event === 'unsubscribed') {
      const err = new Error(`${this.label}: unsubscribed ${e.ctx.code} ${e.ctx.reason}`);
      err.code = e.ctx.code;
      throw err;
    }
    return e.ctx;
  }

  unsubscribe() {
    return this.call('unsubscribe');
  }

  publish(data) {
    return this.call('publish', data);
  }

  presence() {
    return this.call('presence');
  }

  presenceStats() {
    return this.call('presenceStats');
  }

  history(opts) {
    return this.call('history', opts);
  }
}

export class SdkPage {
  // A new page of `context` on `url` (a chorusd serving BLANK_SITE) with the SDK loaded.
  static async open(context, httpUrl, wsUrl) {
    const page = await context.newPage();
    const sdkPage = new SdkPage(page, wsUrl);
    page.on('pageerror', (e) => sdkPage.errors.push(e.message));
    await page.goto(`${httpUrl}/`);
    await page.addScriptTag({ path: SDK_BUNDLE });
    await page.evaluate(installInPage, { clientEvents: CLIENT_EVENTS, subEvents: SUB_EVENTS });
    return sdkPage;
  }

  constructor(page, wsUrl) {
    this.page = page;
    this.wsUrl = wsUrl;
    this.errors = []; // uncaught page errors
    this.made = 0;
  }

  // new Centrifuge(url, SDK_TEST_OPTIONS + options) in the page; `url` defaults to the node's
  // WebSocket URL; `user`: an HS256 token for that user (lib/token.js); `refreshTokens` become
  // its getToken.
  async client({ url = this.wsUrl, user, refreshTokens, ...options } = {}) {
    if (user !== undefined) options.token = userToken(user, TOKEN_SECRET);
    const id = await this.page.evaluate(([u, o, t]) => window.e2e.newClient(u, o, t), [
      url,
      { ...SDK_TEST_OPTIONS, ...options },
      refreshTokens ?? null,
    ]);
    return new PageClient(this.page, id, `page client ${++this.made}${user ? ` (${user})` : ''}`);
  }

  close() {
    return this.page.close();
  }
}

// One Chromium for the tests of a file (node:test before/after): {context, close} once started.
export function sharedChromium() {
  const browser = {};
  before(async () => Object.assign(browser, await launchChromium()));
  after(() => browser.close?.());
  return browser;
}

// withNode() with the node serving BLANK_SITE, plus open(): a new SdkPage on it. Pages are
// closed before the node stops, whatever happens; an uncaught error in a page fails the test.
export function withBrowserNode(browser, config, body) {
  return withNode({ ...config, http: { ...config.http, static_dir: BLANK_SITE } }, async (scope) => {
    const pages = [];
    const open = async () => {
      const p = await SdkPage.open(browser.context, scope.node.httpUrl, scope.node.wsUrl);
      pages.push(p);
      return p;
    };
    try {
      await body({ ...scope, open });
    } finally {
      for (const p of pages) await p.close().catch(() => {});
    }
    const errors = pages.flatMap((p) => p.errors);
    if (errors.length) throw new Error(`uncaught errors in the page: ${JSON.stringify(errors)}`);
  });
}
