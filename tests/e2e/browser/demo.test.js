// The demo page (client/js/demo) in headless Chromium against a real chorusd: two users join
// chat:lobby, each sees both users online, a message from one shows up at the other; after a
// server disconnect the page reconnects and shows the recovery note and every message once.
// Screenshot: tests/e2e/output/demo.png.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { TOKEN_SECRET, withNode } from '../lib/harness.js';
import { launchChromium } from '../lib/browser.js';
import { eventually } from '../lib/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENT_JS = resolve(here, '../../../client/js');
const OUTPUT = resolve(here, '../output');

function buildDemo() {
  execFileSync(process.execPath, [join(CLIENT_JS, 'demo/build.mjs')], { stdio: 'inherit' });
  return true;
}

describe('demo page', () => {
  test('two users chat in chat:lobby; presence shows users; recovery note after a reconnect', () =>
    // The page is built from the sources under test (client/js: npm run build) and served by
    // chorusd itself (http.static_dir), as scripts/run-demo.sh does.
    buildDemo() &&
    withNode({ http: { static_dir: join(CLIENT_JS, 'demo/dist') } }, async ({ node }) => {
      const browser = await launchChromium();
      try {
        const pageErrors = [];
        const open = async (nick) => {
          const page = await browser.context.newPage();
          page.on('pageerror', (e) => pageErrors.push(`${nick}: ${e.message}`));
          const q = new URLSearchParams({ user: nick, secret: TOKEN_SECRET });
          await page.goto(`${node.httpUrl}/?${q}`);  // the WebSocket URL comes from location
          return page;
        };
        // alice speaks first so bob's history-on-join has something to show.
        const alice = await open('alice');
        await alice.locator('#state[data-state="connected"]').waitFor({ timeout: 10000 });
        await node.api('publish', { channel: 'chat:lobby', data: { text: 'welcome (from history)', nick: 'server' } });
        const bob = await open('bob');

        for (const page of [alice, bob]) {
          await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10000 });
          await page.waitForFunction(
            () => [...document.querySelectorAll('#users li')].map((li) => li.textContent).sort().join(',') === 'alice,bob',
            null,
            { timeout: 10000 },
          );
          assert.equal(await page.locator('#num-users').textContent(), '2');
        }
        await bob.getByText('welcome (from history)').waitFor({ timeout: 10000 });

        await alice.fill('#text', 'hello bob, this is alice');
        await alice.press('#text', 'Enter');
        await bob.locator('#messages li.message', { hasText: 'hello bob, this is alice' }).waitFor({ timeout: 10000 });
        assert.equal(await bob.locator('#messages li.message', { hasText: 'hello bob' }).locator('.nick').textContent(), 'alice');

        // A second tab of alice is still one user.
        const alice2 = await open('alice');
        await alice2.locator('#state[data-state="connected"]').waitFor({ timeout: 10000 });
        await eventually(
          async () => (await node.api('presence_stats', { channel: 'chat:lobby' })).num_clients === 3,
          { message: "alice's second tab subscribed" },
        );
        assert.equal(await bob.locator('#users li').count(), 2, 'two tabs of alice are one user');
        await alice2.close();
        await eventually(
          async () => (await node.api('presence_stats', { channel: 'chat:lobby' })).num_clients === 2,
          { message: "alice's second tab gone" },
        );
        assert.equal(await bob.locator('#users li').count(), 2, 'alice still online (first tab)');
        // bob found alice in the snapshot; her second tab coming and going is no user event.
        assert.equal(await bob.locator('#messages li.notice', { hasText: /^alice (joined|left)$/ }).count(), 0);
        assert.equal(await alice.locator('#messages li.notice', { hasText: /^bob joined$/ }).count(), 1);

        // bob loses the connection (server disconnect with a reconnect code) while messages go on.
        await node.api('disconnect', { user: 'bob', disconnect: { code: 3100, reason: 'demo reconnect' } });
        for (let i = 1; i <= 3; i++) {
          await node.api('publish', { channel: 'chat:lobby', data: { text: `missed ${i}`, nick: 'server' } });
        }
        await bob.locator('#recovery', { hasText: /recovered \d+ missed message/ }).waitFor({ timeout: 15000 });
        for (let i = 1; i <= 3; i++) {
          await bob.locator('#messages li.message', { hasText: `missed ${i}` }).waitFor({ timeout: 10000 });
          assert.equal(await bob.locator('#messages li.message', { hasText: `missed ${i}` }).count(), 1, `missed ${i} once`);
        }
        const offsets = await bob.$$eval('#messages li.message', (els) => els.map((e) => Number(e.dataset.offset)));
        assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'messages in offset order');
        assert.equal(new Set(offsets).size, offsets.length, 'no message twice');

        mkdirSync(OUTPUT, { recursive: true });
        const shot = join(OUTPUT, 'demo.png');
        await bob.screenshot({ path: shot, fullPage: true });
        console.log(`# demo screenshot: ${shot}`);
        assert.deepEqual(pageErrors, [], 'no page errors');
      } finally {
        await browser.close();
      }
    }));
});
