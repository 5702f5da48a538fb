// The demo's sync panel (README.md "Demo: the sync panel"): a form that submits a sync of one
// of the demo sources through the demo's sync endpoint (demo/sync_server.mjs; the page never
// holds the API key), and a progress bar per job driven by `watchSync(user)`, so the jobs'
// state survives a reload (history on `sync:<user>`) and a reconnect (recovery).
//
// Where the endpoint is: `?sync=<url>`, else `syncEndpoint` in `demo-config.json` next to the
// page (scripts/run-demo.sh writes it). Without one the panel only watches.

const kUserRe = /^[A-Za-z0-9_.@-]{1,128}$/;

const $ = (id) => document.getElementById(id);

async function findEndpoint(params) {
  if (params.get('sync')) return params.get('sync');
  try {
    const res = await fetch('demo-config.json', { cache: 'no-store' });
    if (!res.ok) return null;
    return (await res.json()).syncEndpoint ?? null;
  } catch {
    return null;
  }
}

function fmtEta(ms) {
  if (ms === null) return '';
  if (ms < 1000) return ' · eta <1 s';
  return ` · eta ${Math.round(ms / 1000)} s`;
}

// The row of one job: label, bar, counts. Returns the row (created on first use).
function row(job) {
  let li = document.querySelector(`#sync-jobs li[data-job="${job}"]`);
  if (li) return li;
  li = document.createElement('li');
  li.dataset.job = String(job);
  li.innerHTML =
    '<div class="sync-head"><span class="sync-name"></span><span class="sync-state"></span>' +
    '<button type="button" class="sync-cancel" hidden>cancel</button></div>' +
    '<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
    '<div class="fill"></div></div><div class="sync-counts"></div>';
  li.querySelector('.sync-name').textContent = `job ${job}`;
  // Newest job first.
  const before = [...$('sync-jobs').children].find((el) => Number(el.dataset.job) < job) ?? null;
  $('sync-jobs').insertBefore(li, before);
  return li;
}

function render(p, sources) {
  const li = row(p.job);
  li.dataset.state = p.state;
  li.dataset.phase = p.phase;
  li.dataset.final = String(p.final);
  li.dataset.percent = String(p.percent);
  li.dataset.fromHistory = String(p.fromHistory);
  if (sources.has(p.job)) li.querySelector('.sync-name').textContent = `job ${p.job} · ${sources.get(p.job)}`;
  li.querySelector('.sync-state').textContent = p.phase;
  const bar = li.querySelector('.bar');
  bar.setAttribute('aria-valuenow', String(p.percent));
  bar.querySelector('.fill').style.width = `${p.percent}%`;
  const failed = p.failed ? `, ${p.failed} failed` : '';
  const rate = p.final ? '' : ` · ${Math.round(p.rate)} files/s${fmtEta(p.etaMs)}`;
  const errors = p.errors.length ? ` · ${p.errors.join('; ')}` : '';
  li.querySelector('.sync-counts').textContent = `${p.done}/${p.total} files${failed}${rate}${errors}`;
  li.querySelector('.sync-cancel').hidden = p.final;
}

// Starts the panel for `user` on `client` (a ChorusClient). `token()`: the page's connection
// token (the endpoint takes the user from it).
export async function startSyncPanel({ client, user, token, params }) {
  $('sync-panel').hidden = false;
  const note = (text) => {
    $('sync-note').textContent = text;
  };
  if (!kUserRe.test(user)) {
    note('sync needs a nickname of letters, digits and _.@- only');
    return null;
  }
  const sources = new Map(); // job -> source name, for jobs submitted from this page
  // What the panel rendered (window.chorusDemo.sync: read by tests/e2e), the trace bounded.
  const stats = { live: 0, history: 0, finals: 0, trace: [] };
  const watch = client.watchSync(user);
  watch.on('progress', (p) => {
    stats[p.fromHistory ? 'history' : 'live']++;
    if (stats.trace.length < 1000) {
      stats.trace.push({ job: p.job, percent: p.percent, final: p.final, fromHistory: p.fromHistory });
    }
    render(p, sources);
  });
  watch.on('final', () => stats.finals++);
  watch.on('sync', (ctx) => {
    // After a new epoch the node forgot the old jobs: show only what the watch knows.
    const known = new Set(ctx.jobs.map((j) => String(j.job)));
    for (const li of [...$('sync-jobs').children]) if (!known.has(li.dataset.job)) li.remove();
    for (const p of ctx.jobs) render(p, sources);
    $('sync-panel').dataset.synced = 'true';
  });
  watch.on('error', (ctx) => note(`sync ${ctx.type}: ${ctx.error?.message ?? ctx.error}`));
  watch.subscribe();

  const endpoint = await findEndpoint(params);
  if (!endpoint) {
    note('no sync endpoint configured (scripts/run-demo.sh starts one): watching only');
    $('sync-form').hidden = true;
    return { watch, stats };
  }
  const call = async (path, body) => {
    const res = await fetch(`${endpoint}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await token()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const out = await res.json();
    if (!res.ok) throw new Error(out.error?.message ?? `HTTP ${res.status}`);
    return out;
  };
  try {
    const res = await fetch(`${endpoint}/sources`);
    const { sources: names, tiers } = await res.json();
    $('sync-source').replaceChildren(...names.map((n) => new Option(n, n)));
    $('sync-tier').replaceChildren(...tiers.map((t) => new Option(t, t)));
  } catch (e) {
    note(`sync endpoint: ${e.message}`);
  }
  // Labels for the jobs found in history (a reloaded page did not submit them).
  const label = () =>
    call('/jobs', {}).then(
      ({ jobs }) => {
        for (const { job, source } of jobs) {
          sources.set(job, source);
          const p = watch.job(job);
          if (p) render(p, sources);
        }
      },
      () => {}, // labels only: the bars work without them
    );
  watch.on('sync', label);
  if (watch.synced) label();
  $('sync-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const source = $('sync-source').value;
    call('/submit', { source, tier: $('sync-tier').value }).then(
      (r) => {
        sources.set(r.job, source);
        note(`job ${r.job} submitted`);
        const p = watch.job(r.job);
        if (p) render(p, sources);
      },
      (e) => note(`not submitted: ${e.message}`),
    );
  });
  $('sync-jobs').addEventListener('click', (ev) => {
    const btn = ev.target.closest('.sync-cancel');
    if (!btn) return;
    const job = Number(btn.closest('li').dataset.job);
    call('/cancel', { job }).catch((e) => note(`not cancelled: ${e.message}`));
  });
  return { watch, stats };
}
