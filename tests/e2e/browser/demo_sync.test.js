// The demo page's sync panel (client/js/demo/sync_panel.js) in headless Chromium against a real
// chorusd with the sync scheduler on (issue 13, "Headless Chromium"): the page submits a sync
// through the demo's sync endpoint (client/js/demo/sync_server.mjs, as scripts/run-demo.sh
// runs it), its progress bar moves live, the page is reloaded mid-job and shows the job's
// current state from history on sync:<user>, survives a reconnect, the bar reaches 100% with the
// final event, and a reload after the end shows the finished state again. Screenshot: tests/e2e/output/demo_sync.png.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { API_KEY, TOKEN_SECRET, withNode } from '../lib/harness.js';
import { launchChromium } from '../lib/browser.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLIENT_JS = resolve(here, '../../../client/js');
const OUTPUT = resolve(here, '../output');
const { makeDemoSources, startSyncServer } = await import(join(CLIENT_JS, 'demo/sync_server.mjs'));

// One slot and 3000 sparse files of 1 MiB (3 GiB read and hashed in 12 sync tasks of 256 files):
// seconds on any machine, so a reload after the first task lands mid-job.
const BIG_FILES = 3000;
const SMALL_FILES = 40;

function job(page, id) {
  return page.locator(`#sync-jobs li[data-job="${id}"]`);
}

async function jobState(page, id) {
  return job(page, id).evaluate((li) => ({
    state: li.dataset.state,
    final: li.dataset.final === 'true',
    percent: Number(li.dataset.percent),
    fromHistory: li.dataset.fromHistory === 'true',
    bar: Number(li.querySelector('.bar').getAttribute('aria-valuenow')),
    counts: li.querySelector('.sync-counts').textContent,
  }));
}

describe('demo page: sync panel', () => {
  test('submit a sync, live progress, reload mid-job and after the end: state from history', async () => {
    execFileSync(process.execPath, [join(CLIENT_JS, 'demo/build.mjs')], { stdio: 'inherit' });
    const work = mkdtempSync(join(tmpdir(), 'chorus-e2e-sync-'));
    try {
      const sources = join(work, 'sources');
      const catalogs = join(work, 'catalogs');
      const statics = join(work, 'static');
      mkdirSync(catalogs);
      mkdirSync(statics);
      copyFileSync(join(CLIENT_JS, 'demo/dist/index.html'), join(statics, 'index.html'));
      makeDemoSources(sources, {
        big: { files: BIG_FILES, bytes: 1 << 20 },
        small: { files: SMALL_FILES, bytes: 4096 },
      });
      const config = {
        http: { static_dir: statics },
        scheduler: {
          enabled: true,
          slots: 1,
          source_roots: [sources],
          catalog_dir: catalogs,
          progress_interval_ms: 100,
        },
        namespaces: { sync: { history_size: 100, history_ttl_ms: 300000, allow_recovery: true } },
      };
      await withNode(config, async ({ node }) => {
        const endpoint = await startSyncServer({
          api: node.httpUrl, apiKey: API_KEY, secret: TOKEN_SECRET, sourcesRoot: sources, origin: node.httpUrl,
        });
        const browser = await launchChromium();
        try {
          writeFileSync(join(statics, 'demo-config.json'), JSON.stringify({ syncEndpoint: endpoint.url }));
          const page = await browser.context.newPage();
          const pageErrors = [];
          page.on('pageerror', (e) => pageErrors.push(e.message));
          const q = new URLSearchParams({ user: 'alice', secret: TOKEN_SECRET });
          const open = async () => {
            await page.goto(`${node.httpUrl}/?${q}`);
            await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10000 });
            await page.locator('#sync-panel[data-synced="true"]').waitFor({ timeout: 10000 });
          };
          await open();
          await page.locator('#sync-source option[value="big"]').waitFor({ state: 'attached', timeout: 10000 });
          assert.deepEqual(await page.$$eval('#sync-source option', (o) => o.map((x) => x.value)), ['big', 'small']);

          // Submit through the page's form; the job appears and its bar moves live.
          await page.selectOption('#sync-source', 'big');
          await page.click('#sync-submit');
          // Job ids come from this member's id block (docs/scheduler.md "Ids across owners").
          const note = page.locator('#sync-note', { hasText: /^job \d+ submitted/ });
          await note.waitFor({ timeout: 10000 });
          const id1 = Number((await note.textContent()).match(/^job (\d+) submitted/)[1]);
          await page.waitForFunction(
            (id) => {
              const li = document.querySelector(`#sync-jobs li[data-job="${id}"]`);
              return li && li.dataset.final === 'false' && Number(li.dataset.percent) > 0;
            },
            id1,
            { timeout: 60000 },
          );
          const before = await jobState(page, id1);
          assert.equal(before.fromHistory, false, 'the bar moved on live events');
          assert.equal(before.state, 'running');
          assert.ok(before.percent > 0 && before.percent < 100, JSON.stringify(before));
          assert.equal(before.bar, before.percent);
          assert.match(before.counts, new RegExp(`^\\d+/${BIG_FILES} files · \\d+ files/s`));

          // Reload mid-job: the job's current state comes back (from history; a live event that
          // overtakes the history read wins, being newer), then goes on live.
          await open();
          const restored = await jobState(page, id1);
          assert.equal(restored.final, false, `reloaded mid-job: ${JSON.stringify(restored)}`);
          assert.ok(restored.percent >= before.percent, `${restored.percent} >= ${before.percent}`);

          // The connection drops (a server disconnect with a reconnect code) while the job runs:
          // the page reconnects, the SDK recovers sync:alice and the watch goes on from there.
          await page.evaluate(() => {
            window.e2eReconnects = 0;
            window.chorusDemo.client.centrifuge.on('connected', () => window.e2eReconnects++);
          });
          await node.api('disconnect', { user: 'alice', disconnect: { code: 3100, reason: 'sync reconnect' } });
          await page.waitForFunction(() => window.e2eReconnects >= 1, null, { timeout: 15000 });

          // The bar reaches 100% with the final event.
          await job(page, id1).and(page.locator('[data-final="true"]')).waitFor({ timeout: 120000 });
          const done = await jobState(page, id1);
          assert.deepEqual(
            { state: done.state, percent: done.percent, bar: done.bar, counts: done.counts },
            { state: 'succeeded', percent: 100, bar: 100, counts: `${BIG_FILES}/${BIG_FILES} files` },
          );
          const trace = await page.evaluate(() => window.chorusDemo.sync.stats.trace);
          const live = trace.filter((t) => t.job === id1 && !t.fromHistory);
          assert.ok(live.some((t) => !t.final), 'progress before the final event arrived live');
          assert.equal(live.filter((t) => t.final).length, 1, 'one final event');
          for (let i = 1; i < live.length; i++) {
            assert.ok(live[i].percent >= live[i - 1].percent, `monotone: ${JSON.stringify(live)}`);
          }
          const st = await node.api('sync_status', { job: id1 });
          assert.equal(st.job.state, 'succeeded');
          assert.equal(st.job.done, BIG_FILES);

          // A second, small job from the same page; then a reload after both ended.
          await page.selectOption('#sync-source', 'small');
          await page.click('#sync-submit');
          const note2 = page.locator('#sync-note', { hasText: new RegExp(`^job (?!${id1} )\\d+ submitted`) });
          await note2.waitFor({ timeout: 10000 });
          const id2 = Number((await note2.textContent()).match(/^job (\d+) submitted/)[1]);
          assert.ok(id2 > id1, `${id2} > ${id1}`);
          await job(page, id2).and(page.locator('[data-final="true"]')).waitFor({ timeout: 60000 });
          assert.equal(await job(page, id2).locator('.sync-name').textContent(), `job ${id2} · small`);
          await open();
          for (const [id, n] of [[id1, BIG_FILES], [id2, SMALL_FILES]]) {
            const s = await jobState(page, id);
            assert.deepEqual(
              { state: s.state, final: s.final, percent: s.percent, bar: s.bar, fromHistory: s.fromHistory, counts: s.counts },
              { state: 'succeeded', final: true, percent: 100, bar: 100, fromHistory: true, counts: `${n}/${n} files` },
              `job ${id} after the reload`,
            );
          }
          assert.deepEqual(await page.$$eval('#sync-jobs li', (l) => l.map((x) => x.dataset.job)), [String(id2), String(id1)]);
          // The labels of jobs found in history come from the endpoint's /jobs (sync_status by user).
          await job(page, id1).locator('.sync-name', { hasText: `job ${id1} · big` }).waitFor({ timeout: 10000 });
          await job(page, id2).locator('.sync-name', { hasText: `job ${id2} · small` }).waitFor({ timeout: 10000 });
          assert.equal(await page.locator('#sync-jobs .sync-cancel:not([hidden])').count(), 0);

          mkdirSync(OUTPUT, { recursive: true });
          const shot = join(OUTPUT, 'demo_sync.png');
          await page.screenshot({ path: shot, fullPage: true });
          console.log(`# demo sync screenshot: ${shot}`);
          assert.deepEqual(pageErrors, [], 'no page errors');
        } finally {
          await browser.close();
          await endpoint.close();
        }
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
