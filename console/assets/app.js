// The agents' console: the queue, a conversation, a thread's history.
// Everything on screen comes from handoverd's JSON APIs and their live
// events; nothing is polled. Text is always set with textContent.
import { api, live, setSession } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h builds an element: h('li', {class: 'x', dataset: {id: 1}}, 'text', child).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const state = {
  me: null,
  account: 0,
  status: 'open',
  assignee: 'all',
  inbox: '',
  inboxes: new Map(),
  list: [],
  selected: 0,
  opening: 0,
  conv: null,
  messages: [],
  thread: null,
  unread: {},
  offset: 0, // server clock − browser clock, ms
  stopLive: null,
};

const OWNERS = { bot: 'Bot', agent: 'Agents', page_inbox: 'Page Inbox', idle: 'Idle', other: 'Another app' };
const STANDARD = 24 * 3600e3;
const HUMAN_AGENT = 7 * 24 * 3600e3;

const now = () => Date.now() + state.offset;

function ago(unixSeconds) {
  const s = Math.max(0, Math.round((now() - unixSeconds * 1000) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function left(ms) {
  const m = Math.floor(ms / 60000);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
}

// ---- sign-in and sign-out ------------------------------------------------

function showSignIn(message) {
  if (state.stopLive) state.stopLive();
  state.stopLive = null;
  state.me = null;
  setSession('');
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message || '';
  $('#token').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('#token');
  $('#signin-error').textContent = '';
  $('#signin-button').disabled = true;
  try {
    const me = await api('POST', '/console/session', { token: input.value });
    input.value = '';
    start(me);
  } catch (e) {
    $('#signin-error').textContent = e.message;
  } finally {
    $('#signin-button').disabled = false;
  }
}

async function signOut() {
  try {
    await api('DELETE', '/console/session');
  } catch (e) {
    if (e.status !== 401) { toast(e.message); return; }
  }
  location.hash = '';
  showSignIn('You are signed out.');
}

function start(me) {
  state.me = me;
  state.offset = Date.parse(me.server_time) - Date.now();
  setSession(me.csrf_token, () => showSignIn('Your session has ended: sign in again.'));
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#me').textContent = `${me.name} (${me.role})`;
  const sel = $('#account');
  sel.replaceChildren(...me.accounts.map((a) => h('option', { value: a.id }, `Account ${a.id}`)));
  if (!me.accounts.length) { toast('No Page belongs to your client yet.'); return; }
  openAccount(me.accounts[0].id);
}

async function openAccount(id) {
  state.account = Number(id);
  state.unread = JSON.parse(sessionStorage.getItem(`unread:${state.account}`) || '{}');
  if (state.stopLive) state.stopLive();
  state.stopLive = live(state.account, onEvent, (s) => {
    const el = $('#live');
    el.dataset.state = s;
    el.textContent = s === 'live' ? 'live' : 'reconnecting…';
  });
  try {
    const ivs = await api('GET', `/api/v1/accounts/${state.account}/inboxes`);
    state.inboxes = new Map(ivs.payload.map((i) => [i.id, i]));
    $('#inbox').replaceChildren(h('option', { value: '' }, 'All inboxes'),
      ...ivs.payload.map((i) => h('option', { value: i.id }, i.name)));
  } catch (e) { toast(e.message); }
  await loadQueue();
  route();
  document.body.dataset.ready = String(state.account);
}

// ---- the queue -----------------------------------------------------------

const base = () => `/api/v1/accounts/${state.account}`;

async function loadQueue() {
  const q = (status, assignee) => {
    const p = new URLSearchParams({ status, assignee_type: assignee });
    if (state.inbox) p.set('inbox_id', state.inbox);
    return api('GET', `${base()}/conversations?${p}`);
  };
  try {
    const statuses = ['open', 'pending', 'snoozed', 'resolved'];
    const [cur, ...others] = await Promise.all([q(state.status, state.assignee),
      ...statuses.filter((s) => s !== state.status).map((s) => q(s, 'all'))]);
    state.list = cur.data.payload;
    const meta = cur.data.meta;
    $('[data-count="mine"]').textContent = meta.mine_count;
    $('[data-count="unassigned"]').textContent = meta.unassigned_count;
    $('[data-count="all"]').textContent = meta.all_count;
    $(`[data-count="${state.status}"]`).textContent = meta.all_count;
    statuses.filter((s) => s !== state.status).forEach((s, i) => { $(`[data-count="${s}"]`).textContent = others[i].data.meta.all_count; });
    renderQueue();
  } catch (e) {
    toast(e.message);
  }
}

let queueTimer = 0;
function reloadQueueSoon() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(loadQueue, 120);
}

// unreadOf is the server's unread count when the API keeps one, else the
// incoming messages this page saw arrive while the conversation was closed.
function unreadOf(c) {
  if (typeof c.unread_count === 'number') return c.id === state.selected ? 0 : c.unread_count;
  return state.unread[c.id] || 0;
}

// markSeen tells the API the agent has read the conversation, where the
// API keeps read marks (Chatwoot's update_last_seen).
let seenSupported = true;
async function markSeen(id) {
  if (!seenSupported) return;
  try {
    await api('POST', `${base()}/conversations/${id}/update_last_seen`);
    reloadQueueSoon();
  } catch (e) {
    if (e.status === 404 || e.status === 405) seenSupported = false;
  }
}

function renderQueue() {
  const ul = $('#conversations');
  ul.replaceChildren(...state.list.map((c) => {
    const name = (c.meta && c.meta.sender && c.meta.sender.name) || `Conversation ${c.id}`;
    const inbox = state.inboxes.get(c.inbox_id);
    const unread = unreadOf(c);
    const who = c.meta && c.meta.assignee ? c.meta.assignee.name : 'unassigned';
    const owner = c.thread_owner ? OWNERS[c.thread_owner] || c.thread_owner : '';
    const li = h('li', {
      role: 'option', id: `conv-${c.id}`, 'aria-selected': c.id === state.selected ? 'true' : 'false',
      dataset: { id: c.id, status: c.status, owner: c.thread_owner || '' },
      'aria-label': `${name}, ${c.status}${unread ? `, ${unread} unread` : ''}, ${who}`,
      on: { click: () => select(c.id) },
    },
    h('span', { class: 'name' }, name),
    h('span', { class: 'when' }, ago(c.last_activity_at)),
    h('span', { class: 'sub' }, [inbox ? inbox.name : '', c.offer_id ? 'offered' : c.status, who, owner && `thread: ${owner}`].filter(Boolean).join(' · ')),
    unread ? h('span', { class: 'unread', dataset: { unread } }, unread) : h('span'));
    return li;
  }));
  $('#empty').hidden = state.list.length > 0;
  ul.setAttribute('aria-activedescendant', state.selected ? `conv-${state.selected}` : '');
}

function select(id) {
  location.hash = `#/conversations/${id}`;
}

function move(step) {
  if (!state.list.length) return;
  let i = state.list.findIndex((c) => c.id === state.selected);
  i = i < 0 ? 0 : Math.min(state.list.length - 1, Math.max(0, i + step));
  select(state.list[i].id);
  const li = $(`#conv-${state.list[i].id}`);
  if (li) li.scrollIntoView({ block: 'nearest' });
}

// ---- live events ---------------------------------------------------------

function onEvent(name, data) {
  const message = name.startsWith('message_');
  const convID = message ? (data.conversation && data.conversation.id) || data.conversation_id : data.id;
  if (message && name === 'message_created' && data.message_type === 0 && convID !== state.selected) {
    state.unread[convID] = (state.unread[convID] || 0) + 1;
    sessionStorage.setItem(`unread:${state.account}`, JSON.stringify(state.unread));
  }
  if (convID === state.selected && state.conv) {
    if (message) {
      const i = state.messages.findIndex((m) => m.id === data.id);
      const { conversation, ...m } = data;
      if (i >= 0) state.messages[i] = m; else state.messages.push(m);
      if (name === 'message_created' && m.message_type === 0) markSeen(convID);
      if (conversation) state.conv = conversation;
      renderTimeline();
      renderHead();
    } else {
      state.conv = { ...state.conv, ...data };
      renderHead();
    }
    if (!message || data.message_type === 2) refreshThreadSoon();
  }
  reloadQueueSoon();
}

// ---- a conversation ------------------------------------------------------

async function openConversation(id) {
  state.selected = id;
  state.conv = null;
  headKey = '';
  delete state.unread[id];
  sessionStorage.setItem(`unread:${state.account}`, JSON.stringify(state.unread));
  renderQueue();
  $('.layout').classList.add('has-conv');
  const pane = $('#conversation');
  pane.replaceChildren(h('p', { class: 'placeholder' }, 'Loading…'));
  state.opening = id;
  try {
    const [conv, msgs] = await Promise.all([api('GET', `${base()}/conversations/${id}`), api('GET', `${base()}/conversations/${id}/messages`)]);
    if (state.selected !== id) return;
    state.conv = conv;
    state.messages = msgs.payload;
    state.thread = null;
    renderConversation();
    markSeen(id);
    await refreshThread();
  } catch (e) {
    pane.replaceChildren(h('p', { class: 'placeholder', role: 'alert' }, e.message));
  } finally {
    if (state.opening === id) state.opening = 0;
  }
}

async function refreshThread() {
  const c = state.conv;
  if (!c || !c.psid) return;
  try {
    state.thread = await api('GET', `/1.0/threads/${encodeURIComponent(c.page_id)}/${encodeURIComponent(c.psid)}`);
  } catch (e) {
    state.thread = null;
  }
  renderHead();
}

let threadTimer = 0;
function refreshThreadSoon() {
  clearTimeout(threadTimer);
  threadTimer = setTimeout(refreshThread, 100);
}

function renderConversation() {
  const pane = $('#conversation');
  const composer = h('form', { id: 'composer', class: 'composer', 'aria-label': 'Reply', on: { submit: send } },
    h('label', { for: 'reply' }, 'Reply to the customer (Enter sends, Shift+Enter for a new line)'),
    h('textarea', { id: 'reply', name: 'reply', rows: 2, on: { keydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(e); }
      if (e.key === 'Escape') e.target.blur();
    } } }),
    h('div', { class: 'row' },
      h('label', {}, h('input', { type: 'checkbox', id: 'private' }), ' Private note'),
      h('span', { id: 'send-state', class: 'grow', role: 'status', 'aria-live': 'polite' }),
      h('button', { type: 'submit', id: 'send', class: 'primary' }, 'Send')));
  pane.replaceChildren(
    h('header', { id: 'conv-head', class: 'conv-head' }),
    h('ol', { id: 'timeline', class: 'timeline', 'aria-label': 'Timeline', 'aria-live': 'polite', tabindex: 0 }),
    composer);
  renderHead();
  renderTimeline();
}

function windowOf() {
  const t = state.thread;
  if (!t) return { kind: 'unknown', text: 'Reply window: …' };
  const last = t && t.last_customer_at ? Date.parse(t.last_customer_at) : 0;
  if (!last) return { kind: 'closed', text: 'Reply window closed: the customer must write first' };
  const since = now() - last;
  if (since <= STANDARD) return { kind: 'standard', text: `Standard window: ${left(STANDARD - since)} left` };
  if (since <= HUMAN_AGENT) return { kind: 'human_agent', text: `HUMAN_AGENT window: ${left(HUMAN_AGENT - since)} left` };
  return { kind: 'closed', text: 'Reply window closed: the customer must write first' };
}

let headKey = '';
function renderHead() {
  const head = $('#conv-head');
  const c = state.conv;
  if (!head || !c) return;
  // Rebuild only on a change: an unchanged header keeps its focus and
  // does not make screen readers repeat it.
  const t0 = state.thread;
  const key = JSON.stringify([c.id, c.status, c.thread_owner, c.offer_id, c.meta && c.meta.assignee, c.meta && c.meta.sender && c.meta.sender.name,
    t0 && t0.owner, t0 && !!t0.pending_request, c.psid ? windowOf().text : '', state.me.agents]);
  if (key === headKey && head.firstChild) return;
  headKey = key;
  const name = (c.meta && c.meta.sender && c.meta.sender.name) || `Conversation ${c.id}`;
  const t = state.thread;
  const owner = (t && t.owner) || c.thread_owner || '';
  const badges = [h('span', { class: 'badge', id: 'status-badge', dataset: { status: c.status } }, `Status: ${c.status}`)];
  if (c.psid) {
    badges.push(h('span', { class: 'badge', id: 'owner-badge', dataset: { owner } }, `Thread: ${OWNERS[owner] || owner || 'unknown'}`));
    if (c.offer_id) badges.push(h('span', { class: 'badge', id: 'offer-badge', dataset: { owner: 'other' } }, 'Offered by the bot'));
    if (t && t.pending_request && owner !== 'agent') badges.push(h('span', { class: 'badge', id: 'pending-badge', dataset: { owner: 'other' } }, 'Request for control pending'));
    const w = windowOf();
    badges.push(h('span', { class: 'badge', id: 'window-badge', dataset: { window: w.kind } }, w.text));
  }
  const assignee = c.meta && c.meta.assignee;
  badges.push(h('span', { class: 'badge', id: 'assignee-badge' }, assignee ? `Assigned to ${assignee.name}` : 'Unassigned'));
  const agents = (state.me.agents || []).filter((a) => a.id !== state.me.agent_id);
  const actions = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Conversation actions' });
  if (c.offer_id) {
    actions.append(h('button', { type: 'button', id: 'accept-offer', class: 'primary', on: { click: () => decideOffer('accept') } }, 'Accept'),
      h('button', { type: 'button', id: 'decline-offer', on: { click: () => decideOffer('decline') } }, 'Decline'));
  } else if (c.psid && owner !== 'agent') actions.append(h('button', { type: 'button', id: 'take-over', class: 'primary', on: { click: takeOver } }, 'Take over'));
  if (state.me.agent_id && (!assignee || assignee.id !== state.me.agent_id)) actions.append(h('button', { type: 'button', id: 'assign-me', on: { click: () => assign(state.me.agent_id) } }, 'Assign to me'));
  if (agents.length) {
    const sel = h('select', { id: 'assign-to', 'aria-label': 'Assign to an agent' }, h('option', { value: '' }, 'Assign to…'),
      ...agents.map((a) => h('option', { value: a.id }, a.name)));
    sel.addEventListener('change', () => { if (sel.value) assign(Number(sel.value)); });
    actions.append(sel);
  }
  if (c.status !== 'resolved') actions.append(h('button', { type: 'button', id: 'resolve', on: { click: resolve } }, 'Resolve'));
  if (c.psid && owner === 'agent') actions.append(h('button', { type: 'button', id: 'hand-back', on: { click: handBack } }, 'Hand back to bot'));
  if (c.psid) actions.append(h('a', { id: 'thread-link', href: `#/threads/${encodeURIComponent(c.page_id)}/${encodeURIComponent(c.psid)}` }, 'Ownership history'));
  const inbox = state.inboxes.get(c.inbox_id);
  const prevError = $('#action-error');
  head.replaceChildren(
    h('h2', {}, h('button', { type: 'button', class: 'back', 'aria-label': 'Back to the queue', on: { click: () => { location.hash = ''; } } }, '←'),
      h('span', { id: 'contact-name' }, name)),
    h('div', { class: 'sub' }, [inbox && inbox.name, c.psid && `PSID ${c.psid}`].filter(Boolean).join(' · ')),
    h('div', { class: 'badges', 'aria-label': 'State' }, badges),
    actions,
    h('p', { id: 'action-error', class: 'action-error', role: 'alert' }, prevError ? prevError.textContent : ''));
}

function statusText(m) {
  const attrs = m.content_attributes || {};
  switch (m.status) {
    case 'queued': return 'waiting for control';
    case 'failed': return `failed: ${attrs.external_error || 'not sent'}`;
    default: return m.status;
  }
}

function attachment(a) {
  const url = a.data_url || (a.payload && a.payload.url) || '';
  const link = () => h('a', { class: 'attachment', href: url, rel: 'noopener noreferrer', target: '_blank' }, `${a.file_type || 'file'} attachment`);
  if (a.file_type === 'image' && /^https?:/.test(url)) {
    // Facebook's attachment URLs expire: a picture that no longer loads
    // becomes a link.
    const img = h('img', { src: url, alt: 'Image from the customer' });
    img.addEventListener('error', () => img.replaceWith(link()));
    return img;
  }
  if (/^https?:/.test(url)) return link();
  return h('span', {}, `[${a.file_type || 'attachment'}]`);
}

function renderTimeline() {
  const ol = $('#timeline');
  if (!ol) return;
  const stick = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 40;
  ol.replaceChildren(...state.messages.map((m) => {
    const time = new Date(m.created_at * 1000).toLocaleString();
    if (m.message_type === 2) return h('li', { class: 'activity', dataset: { id: m.id, kind: 'activity' } }, m.content, ' · ', time);
    const sender = m.sender || {};
    let kind = 'customer'; let cls = 'msg in'; let who = sender.name || 'Customer';
    if (m.message_type === 1) {
      if (m.private) { kind = 'note'; cls = 'msg out note'; who = `Private note by ${sender.name || 'an agent'}`; }
      else if (sender.type === 'bot' || m.automated) { kind = 'bot'; cls = 'msg out bot'; who = `${sender.name || 'Bot'} · automated`; }
      else { kind = 'agent'; cls = 'msg out'; }
    }
    const meta = h('div', { class: 'meta' }, h('span', {}, who), h('time', {}, time));
    if (kind === 'agent' && m.status) meta.append(h('span', { class: 'status', dataset: { status: m.status } }, statusText(m)));
    if (m.claimed_by) meta.append(h('span', {}, `handled by ${m.claimed_by}`));
    return h('li', { class: cls, dataset: { id: m.id, kind, status: m.status || '' } },
      meta, m.content ? h('div', { class: 'text' }, m.content) : null,
      Array.isArray(m.attachments) ? m.attachments.map(attachment) : null);
  }));
  if (stick) ol.scrollTop = ol.scrollHeight;
  const waiting = state.messages.some((m) => m.message_type === 1 && !m.private && m.status === 'queued');
  const st = $('#send-state');
  if (st) st.textContent = waiting ? 'waiting for control…' : '';
}

// ---- actions -------------------------------------------------------------

function refused(e) {
  const el = $('#action-error');
  if (el) el.textContent = e.message; else toast(e.message);
}

async function act(fn) {
  const el = $('#action-error');
  if (el) el.textContent = '';
  try { await fn(); } catch (e) { refused(e); }
}

function takeOver() {
  const c = state.conv;
  return act(async () => {
    await api('POST', '/1.0/interventions', { page_id: c.page_id, identity_foreign_id: c.psid });
    if (state.me.agent_id && !(c.meta && c.meta.assignee)) await api('POST', `${base()}/conversations/${c.id}/assignments`, { assignee_id: state.me.agent_id });
    await refreshThread();
  });
}

// decideOffer accepts (the first agent gets the conversation; a later one
// is refused with the reason) or declines the bot's offer.
function decideOffer(how) {
  const c = state.conv;
  return act(async () => {
    await api('POST', `/1.0/handovers/${c.offer_id}/${how}`);
    state.conv = await api('GET', `${base()}/conversations/${c.id}`);
    await refreshThread();
  });
}

function assign(agentID) {
  const c = state.conv;
  return act(async () => {
    const a = await api('POST', `${base()}/conversations/${c.id}/assignments`, { assignee_id: agentID });
    state.conv = { ...state.conv, assignee_id: agentID, meta: { ...state.conv.meta, assignee: a } };
    renderHead();
  });
}

function resolve() {
  const c = state.conv;
  return act(async () => {
    await api('POST', `${base()}/conversations/${c.id}/toggle_status`, { status: 'resolved' });
    state.conv = { ...state.conv, status: 'resolved' };
    renderHead();
    await refreshThread();
  });
}

function handBack() {
  const c = state.conv;
  return act(async () => {
    const p = new URLSearchParams({ page_id: c.page_id, identity_foreign_id: c.psid });
    const ivs = await api('GET', `/1.0/interventions?${p}`);
    const open = ivs.find((iv) => iv.status === 'open');
    if (open) await api('PUT', `/1.0/interventions/${open.id}/close`);
    else await api('POST', `/1.0/bots/handover?${new URLSearchParams({ identity_foreign_id: c.psid, page_id: c.page_id, from: 'agent', to: 'bot', type: 'messenger' })}`);
    await refreshThread();
  });
}

async function send(ev) {
  ev.preventDefault();
  const box = $('#reply');
  const text = box.value;
  if (!text.trim()) return;
  const priv = $('#private').checked;
  const btn = $('#send');
  btn.disabled = true;
  await act(async () => {
    const m = await api('POST', `${base()}/conversations/${state.conv.id}/messages`, { content: text, message_type: 'outgoing', private: priv });
    box.value = '';
    $('#private').checked = false;
    if (!state.messages.some((x) => x.id === m.id)) state.messages.push(m);
    renderTimeline();
  });
  btn.disabled = false;
  box.focus();
}

// ---- a thread's ownership history ------------------------------------------

async function openThread(pageID, psid) {
  $('.layout').classList.add('has-conv');
  const pane = $('#conversation');
  pane.replaceChildren(h('p', { class: 'placeholder' }, 'Loading…'));
  try {
    const t = await api('GET', `/1.0/threads/${encodeURIComponent(pageID)}/${encodeURIComponent(psid)}`);
    const back = state.selected ? `#/conversations/${state.selected}` : '#';
    pane.replaceChildren(
      h('header', { class: 'conv-head' },
        h('h2', {}, h('a', { href: back, 'aria-label': 'Back to the conversation' }, '←'), ` Thread of ${psid} on Page ${pageID}`),
        h('div', { class: 'badges' }, h('span', { class: 'badge', id: 'owner-badge', dataset: { owner: t.owner } }, `Thread: ${OWNERS[t.owner] || t.owner}`),
          t.pending_request ? h('span', { class: 'badge', dataset: { owner: 'other' } }, `Request pending since ${new Date(t.pending_request.at).toLocaleString()}`) : null)),
      h('ol', { id: 'history', class: 'history', 'aria-label': 'Ownership history, oldest first' },
        t.history.map((x) => h('li', { dataset: { to: x.to } },
          h('time', { datetime: x.at }, new Date(x.at).toLocaleString()),
          h('strong', {}, `${OWNERS[x.from] || x.from} → ${OWNERS[x.to] || x.to}`),
          ` · ${x.cause.replaceAll('_', ' ')}`, x.actor ? ` · by ${x.actor}` : '',
          x.to_app_id ? ` · app ${x.to_app_id}` : ''))));
  } catch (e) {
    pane.replaceChildren(h('p', { class: 'placeholder', role: 'alert' }, e.message));
  }
}

// ---- handoff analytics -----------------------------------------------------

// openAnalytics shows a Page's handoff analytics for the last 7 days (on
// the server's clock): one row per day and the total, with the CSV.
async function openAnalytics(pageID) {
  $('.layout').classList.add('has-conv');
  const pane = $('#conversation');
  const pages = [...new Set([...state.inboxes.values()].map((i) => i.page_id).filter(Boolean))];
  const page = pageID || pages[0];
  if (!page) { pane.replaceChildren(h('p', { class: 'placeholder' }, 'No Messenger Page in this account.')); return; }
  pane.replaceChildren(h('p', { class: 'placeholder' }, 'Loading…'));
  const q = new URLSearchParams({ page_id: page });
  try {
    const r = await api('GET', `/1.0/analytics?${q}`);
    const secs = (v) => {
      if (v === null || v === undefined) return '–';
      if (v < 60) return `${v} s`;
      return v < 3600 ? `${Math.floor(v / 60)} min ${Math.round(v % 60)} s` : left(v * 1000);
    };
    const cells = (c) => [c.conversations, c.contained_by_bot, c.handed_to_agents, secs(c.first_reply_seconds_p50),
      secs(c.first_reply_seconds_p90), c.resolved_by_agents, c.handed_back_to_bot, c.offers_expired].map((v) => h('td', {}, String(v)));
    const heads = ['Day', 'Conversations', 'Contained by the bot', 'Handed to agents', 'First reply p50', 'First reply p90',
      'Resolved by agents', 'Handed back to the bot', 'Offers expired'];
    const reasons = Object.entries(r.total.handed_to_agents_by_reason).sort()
      .map(([k, v]) => `${k.replaceAll('_', ' ')}: ${v}`).join(' · ');
    q.set('format', 'csv');
    pane.replaceChildren(
      h('header', { class: 'conv-head' },
        h('h2', {}, h('a', { href: '#', 'aria-label': 'Back to the queue' }, '←'), ` Handoff analytics, ${r.from} to ${r.to}`),
        pages.length > 1 ? h('label', { for: 'analytics-page' }, 'Page ',
          h('select', { id: 'analytics-page', on: { change: (e) => { location.hash = `#/analytics/${encodeURIComponent(e.target.value)}`; } } },
            pages.map((p) => { const o = h('option', { value: p }, p); o.selected = p === page; return o; }))) : h('span', {}, `Page ${page}`)),
      h('table', { id: 'analytics', class: 'analytics' },
        h('caption', {}, 'Per day (UTC), from the stored thread history'),
        h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, r.days.map((d) => h('tr', { dataset: { date: d.date } }, h('th', { scope: 'row' }, d.date), cells(d)))),
        h('tfoot', {}, h('tr', { dataset: { date: 'total' } }, h('th', { scope: 'row' }, 'Total'), cells(r.total)))),
      h('p', { id: 'analytics-reasons' }, reasons ? `Handed to agents by reason: ${reasons}` : 'No hand-offs to agents.'),
      h('p', {}, h('a', { id: 'analytics-csv', href: `/1.0/analytics?${q}`, download: '' }, 'Download CSV')));
  } catch (e) {
    pane.replaceChildren(h('p', { class: 'placeholder', role: 'alert' }, e.message));
  }
}

// ---- routing and keys ----------------------------------------------------

function route() {
  if (!state.me) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'conversations' && parts[1]) {
    // Already open (or opening): keep it, and the reply being typed.
    const id = Number(parts[1]);
    if (id !== state.selected || (!$('#composer') && state.opening !== id)) openConversation(id);
    return;
  }
  if (parts[0] === 'threads' && parts[2]) { openThread(parts[1], parts[2]); return; }
  if (parts[0] === 'analytics') { openAnalytics(parts[1]); return; }
  state.selected = 0;
  state.conv = null;
  $('.layout').classList.remove('has-conv');
  $('#conversation').replaceChildren(h('p', { class: 'placeholder' }, 'Pick a conversation from the queue.'));
  renderQueue();
}

function onKey(e) {
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = e.target.tagName;
  if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') return;
  const inList = e.target.id === 'conversations';
  switch (e.key) {
    case 'j': move(1); break;
    case 'k': move(-1); break;
    case 'ArrowDown': if (!inList) return; move(1); break;
    case 'ArrowUp': if (!inList) return; move(-1); break;
    case 'r': break; // focused on keyup, so the key itself is not typed into the box
    case 'e': if (state.conv && state.conv.status !== 'resolved') resolve(); break;
    default: return;
  }
  e.preventDefault();
}

function onKeyUp(e) {
  if (!state.me || e.key !== 'r' || e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = e.target.tagName;
  if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') return;
  const r = $('#reply');
  if (r) r.focus();
}

function setFilter(kind, value) {
  if (kind === 'status') {
    state.status = value;
    $$('[data-status][role="tab"]').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.status === value)));
  } else {
    state.assignee = value;
    $$('[data-assignee]').forEach((b) => b.setAttribute('aria-checked', String(b.dataset.assignee === value)));
  }
  loadQueue();
}

function init() {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#account').addEventListener('change', (e) => openAccount(e.target.value));
  $('#inbox').addEventListener('change', (e) => { state.inbox = e.target.value; loadQueue(); });
  $$('[data-status][role="tab"]').forEach((b) => b.addEventListener('click', () => setFilter('status', b.dataset.status)));
  $$('[data-assignee]').forEach((b) => b.addEventListener('click', () => setFilter('assignee', b.dataset.assignee)));
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', onKey);
  document.addEventListener('keyup', onKeyUp);
  // The reply window counts down on the clock, not on the server.
  setInterval(() => { if (state.conv) renderHead(); if (state.list.length) renderQueue(); }, 30000);
  api('GET', '/console/session').then(start, () => showSignIn(''));
}

init();
