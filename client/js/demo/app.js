// Chorus chat demo (README.md "Demo"): one room, users (not connections) online, history on
// join, recovery after a reconnect, a send box, and a sync panel (sync_panel.js). Bundled by
// `npm run build` into dist/.
//
// URL parameters (all optional):
//   user=<nick>     join at once as <nick> (else the form asks)
//   ws=<url>        WebSocket endpoint (default: this page's host, /connection/websocket)
//   channel=<name>  default chat:lobby
//   token=<jwt>     use this connection token instead of minting a demo one
//   secret=<s>      the demo node's token_hmac_secret (default chorus-demo-secret)
//   sync=<url>      the demo's sync endpoint (default: syncEndpoint in demo-config.json)

import { ChorusClient } from '../src/index.js';
import { startSyncPanel } from './sync_panel.js';
import { signHs256 } from './token.js';

const params = new URLSearchParams(location.search);
const CHANNEL = params.get('channel') || 'chat:lobby';
const WS_URL =
  params.get('ws') ||
  `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/connection/websocket`;
const DEMO_SECRET = params.get('secret') || 'chorus-demo-secret';
const HISTORY_ON_JOIN = 20;

const $ = (id) => document.getElementById(id);

// Messages shown, by offset (publications of a channel with history have one).
let shown = new Map();
let lastOffset = 0;

function tokenFor(nick) {
  const given = params.get('token');
  if (given) return given;
  const now = Math.floor(Date.now() / 1000);
  return signHs256({ sub: nick, info: { nick }, iat: now, exp: now + 3600 }, DEMO_SECRET);
}

function notice(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = text;
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
}

function addMessage(pub) {
  const offset = pub.offset ?? 0;
  if (offset && shown.has(offset)) return; // history and live overlap: once each
  const li = document.createElement('li');
  li.className = 'message';
  if (offset) li.dataset.offset = String(offset);
  const nick = document.createElement('span');
  nick.className = 'nick';
  nick.textContent = pub.info?.user || pub.data?.nick || 'server';
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = typeof pub.data?.text === 'string' ? pub.data.text : JSON.stringify(pub.data);
  li.append(nick, text);
  // Keep messages in offset order (history may arrive after a live one).
  const list = $('messages');
  let before = null;
  if (offset) {
    for (const el of list.querySelectorAll('li.message[data-offset]')) {
      if (Number(el.dataset.offset) > offset) {
        before = el;
        break;
      }
    }
    shown.set(offset, li);
    lastOffset = Math.max(lastOffset, offset);
  }
  list.insertBefore(li, before);
  li.scrollIntoView({ block: 'end' });
}

function renderUsers(users) {
  const ul = $('users');
  ul.replaceChildren(
    ...users.map((u) => {
      const li = document.createElement('li');
      li.textContent = u || '(anonymous)';
      return li;
    }),
  );
  $('num-users').textContent = String(users.length);
}

function setState(state, label = state) {
  $('state').dataset.state = state;
  $('state').textContent = label;
}

async function loadHistory(sub) {
  const h = await sub.history({ limit: HISTORY_ON_JOIN, reverse: true });
  for (const pub of h.publications.reverse()) addMessage(pub);
}

function join(nick) {
  $('login').hidden = true;
  $('room').hidden = false;
  document.title = `${nick} · Chorus chat`;

  const client = new ChorusClient(WS_URL, { getToken: async () => tokenFor(nick), name: 'chorus-demo' });
  const centrifuge = client.centrifuge;
  let wasConnected = false;
  centrifuge.on('connecting', (ctx) => {
    setState('connecting', wasConnected ? 'reconnecting…' : 'connecting…');
    if (wasConnected) $('recovery').textContent = `link lost (${ctx.code} ${ctx.reason})`;
  });
  centrifuge.on('connected', () => {
    wasConnected = true;
    setState('connected');
  });
  centrifuge.on('disconnected', (ctx) => setState('disconnected', `disconnected: ${ctx.reason}`));

  const room = client.userSubscription(CHANNEL, { recoverable: true });
  const sub = room.subscription;
  room.on('sync', (ctx) => renderUsers(ctx.users));
  room.on('userJoin', (ctx) => {
    renderUsers(room.users());
    if (!ctx.snapshot) notice(`${ctx.user} joined`);
  });
  room.on('userLeave', (ctx) => {
    renderUsers(room.users());
    if (!ctx.snapshot) notice(`${ctx.user} left`);
  });
  room.on('error', (ctx) => notice(`presence: ${ctx.error?.message ?? ctx.error}`));

  sub.on('publication', addMessage);
  sub.on('subscribed', (ctx) => {
    if (!ctx.wasRecovering) {
      loadHistory(sub).catch((e) => notice(`history: ${e.message}`));
    } else if (ctx.recovered) {
      const missed = (ctx.streamPosition?.offset ?? lastOffset) - lastOffset;
      $('recovery').textContent = `recovered ${missed} missed message${missed === 1 ? '' : 's'}`;
    } else {
      $('recovery').textContent = 'history lost: reloaded';
      shown = new Map();
      lastOffset = 0;
      for (const el of $('messages').querySelectorAll('li.message')) el.remove();
      loadHistory(sub).catch((e) => notice(`history: ${e.message}`));
    }
  });
  sub.on('error', (ctx) => notice(`subscription: ${ctx.error.message} (${ctx.error.code})`));

  $('send').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('text').value.trim();
    if (!text) return;
    $('text').value = '';
    sub.publish({ text, nick }).catch((e) => notice(`not sent: ${e.message} (${e.code})`));
  });

  room.subscribe();
  const demo = { client, room, nick, sync: null };
  window.chorusDemo = demo;
  startSyncPanel({ client, user: nick, token: async () => tokenFor(nick), params }).then(
    (panel) => {
      demo.sync = panel;
    },
    (e) => notice(`sync panel: ${e.message}`),
  );
  client.connect();
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const nick = $('nick').value.trim();
  if (nick) join(nick);
});
if (params.get('user')) join(params.get('user'));
