// pactum's owner dashboard. It holds no data of its own: it signs in with the owner's token and
// calls the same API endpoints as any client, so it shows exactly what that token may see. The
// token lives in this tab's sessionStorage only and is sent in the Authorization header (never a
// cookie: nothing another site could make the browser send). Every value is put in the page as
// text (textContent), never as markup.
'use strict';

const TOKEN = 'pactum.ownerToken';
let token = sessionStorage.getItem(TOKEN);
let agents = [];

const $ = (id) => document.getElementById(id);

/** An element with attributes (`on…` are listeners) and children (strings become text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Reports progress politely; errors go to the assertive alert region instead. */
function say(message, error) {
  $('status').textContent = error ? '' : message;
  $('alert').textContent = error ? message : '';
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? `${problem.detail} (${problem.code})` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return 'dash-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One API call with the owner's token; a problem answer becomes an ApiError. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (method !== 'GET') headers['Idempotency-Key'] = idempotencyKey();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const answer = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await answer.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

const q = encodeURIComponent;
const cents = (c) => `$${(Number(c) / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}`;
const short = (hex) => (hex && hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex || '—');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function table(headings, rows, label) {
  return el('table', { 'aria-label': label },
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows));
}

function empty(text) {
  return el('p', { class: 'help' }, text);
}

// ---- sign in / out ------------------------------------------------------------------------

async function signIn(candidate) {
  token = candidate;
  let me;
  try {
    me = await api('GET', '/owners/me');
  } catch (err) {
    token = null;
    sessionStorage.removeItem(TOKEN);
    say(`That token was refused: ${err.message}`, true);
    $('token').focus();
    return;
  }
  sessionStorage.setItem(TOKEN, token);
  $('token').value = '';
  $('who').textContent = `Signed in as ${me.name} (${me.owner_id})`;
  $('sign-in-section').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  // A section that fails to load says so in place; the others still show.
  await loadAll();
  say(`Signed in as ${me.name}.`);
  $('approvals-title').focus();
}

function signOut() {
  token = null;
  sessionStorage.removeItem(TOKEN);
  for (const id of ['agents-body', 'approvals-body', 'agreements-body', 'agreements-more',
    'agreement-detail', 'deliveries-body', 'receipts-body', 'agreement-agent', 'who',
    'approvals-count']) {
    $(id).replaceChildren();
  }
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in-section').hidden = false;
  $('token').value = '';
  say('Signed out.');
  $('token').focus();
}

/** Every item of a paged list (following `next_cursor`). */
async function every(path, field) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=100${cursor ? `&cursor=${q(cursor)}` : ''}`);
    items.push(...page[field]);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** Runs a section's loader; a failure is shown in the section, not left to stop the page. */
async function section(body, load) {
  try {
    await load();
  } catch (err) {
    $(body).replaceChildren(el('p', { class: 'invalid' }, `Could not load this section: ${err.message}`));
  }
}

async function loadAll() {
  await section('agents-body', async () => {
    agents = await every('/agents', 'agents');
  });
  const select = $('agreement-agent');
  select.replaceChildren(...agents.map((a) => el('option', { value: a.agent_id }, `${a.name} (${a.agent_id})`)));
  await Promise.all([
    section('agents-body', loadAgents),
    section('approvals-body', loadApprovals),
    section('agreements-body', loadAgreements),
    section('deliveries-body', loadDeliveries),
    section('receipts-body', loadReceipts),
  ]);
}

/** Runs `action` for a button, disabling it meanwhile; errors go to the status line. */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    say(err.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- agents and policies -------------------------------------------------------------------

async function loadAgents() {
  const rows = [];
  for (const a of agents) {
    let policy;
    try {
      const view = await api('GET', `/agents/${q(a.agent_id)}/policies`);
      const rules = Object.entries(view.policy).filter(([, v]) => v !== null && v !== undefined);
      policy = rules.length
        ? el('dl', { class: 'policy' }, rules.map(([k, v]) => [el('dt', {}, k.replaceAll('_', ' ')),
          el('dd', {}, k.endsWith('_cents') ? cents(v) : Array.isArray(v) ? v.join(', ') || '(none)' : String(v))]))
        : 'No rules: every proposal goes straight to the seller.';
      policy = [el('p', { class: 'help' }, `version ${view.version}`), policy];
    } catch (err) {
      policy = `Policy unavailable: ${err.message}`;
    }
    rows.push(el('tr', { 'data-agent-id': a.agent_id },
      el('th', { scope: 'row' }, a.agent_id), el('td', {}, a.name),
      el('td', {}, el('code', {}, a.wallet_address), a.wallet_proven ? ' (proven)' : ''),
      el('td', {}, String(a.active_api_keys)), el('td', {}, policy)));
  }
  $('agents-body').replaceChildren(rows.length
    ? table(['Agent', 'Name', 'Wallet', 'Active API keys', 'Policy'], rows, 'Agents')
    : empty('No agents yet.'));
}

// ---- approvals ----------------------------------------------------------------------------

async function loadApprovals() {
  const pending = [];
  for (const a of agents) {
    pending.push(...await every(`/agents/${q(a.agent_id)}/approvals?status=pending`, 'approvals'));
  }
  $('approvals-count').textContent = pending.length ? String(pending.length) : '';
  $('approvals-body').replaceChildren(...(pending.length
    ? pending.map(approvalItem)
    : [empty('Nothing waits for your decision.')]));
}

function approvalItem(r) {
  const reasonId = `reason-${r.request_id}`;
  const approve = el('button', {
    type: 'button', class: 'approve', 'data-request-id': r.request_id,
    'aria-label': `Approve ${cents(r.amount_cents)} for ${r.service_id} (${r.request_id})`,
  }, 'Approve');
  approve.addEventListener('click', () => act(approve, async () => {
    await api('POST', `/agents/${q(r.agent_id)}/approvals/${q(r.request_id)}/approve`);
    say(`Approved ${r.request_id}: the proposal goes on to ${r.counterparty_agent_id}.`);
    await Promise.all([loadApprovals(), loadAgreements()]);
    $('approvals-title').focus();
  }));
  const reason = el('input', { type: 'text', id: reasonId, name: 'reason', required: true, maxlength: 500 });
  const reject = el('form', { class: 'reject', 'data-request-id': r.request_id },
    el('label', { for: reasonId }, 'Reason for rejecting'), reason,
    el('button', { type: 'submit', class: 'secondary' }, 'Reject'));
  reject.addEventListener('submit', (event) => {
    event.preventDefault();
    const button = reject.querySelector('button');
    act(button, async () => {
      const why = reason.value.trim();
      await api('POST', `/agents/${q(r.agent_id)}/approvals/${q(r.request_id)}/reject?reason=${q(why)}`);
      say(`Rejected ${r.request_id}: ${why}`);
      await Promise.all([loadApprovals(), loadAgreements()]);
      $('approvals-title').focus();
    });
  });
  return el('article', { class: 'approval', 'data-request-id': r.request_id, 'aria-label': `Approval ${r.request_id}` },
    el('p', {},
      el('strong', {}, r.agent_id), ` wants to buy ${r.quantity} ${r.unit} of `, el('code', {}, r.service_id),
      ` from ${r.counterparty_agent_id} for `, el('strong', {}, cents(r.amount_cents)),
      ` (the policy asks above ${cents(r.threshold_cents)}). Agreement `, el('code', {}, r.agreement_id), '.'),
    approve, reject);
}

// ---- agreements ---------------------------------------------------------------------------

let agreementsShown = 0;

async function loadAgreements(more) {
  const agent = $('agreement-agent').value;
  const asked = ++agreementsShown;
  if (!agent) {
    $('agreements-body').replaceChildren(empty('No agents yet.'));
    return;
  }
  const cursor = more ? `&cursor=${q(more.cursor)}` : '';
  const page = await api('GET', `/usage-agreements/agents/${q(agent)}/agreements?limit=50${cursor}`);
  // A later choice of agent wins over an answer that arrives late.
  if (asked !== agreementsShown) return;
  const rows = page.agreements.map((g) => {
    const open = el('button', { type: 'button', class: 'secondary', 'aria-label': `Details of ${g.agreement_id}` },
      'Details');
    open.addEventListener('click', () => act(open, () => showAgreement(g.agreement_id)));
    const counterparty = g.buyer_agent_id === agent ? g.seller_agent_id : g.buyer_agent_id;
    return el('tr', { 'data-agreement-id': g.agreement_id },
      el('th', { scope: 'row' }, el('code', {}, g.agreement_id)),
      el('td', {}, g.your_roles.join(', ')), el('td', {}, counterparty),
      el('td', {}, g.service_id), el('td', { class: 'agreement-status' }, g.status),
      el('td', {}, cents(g.quantity * g.price_per_unit_cents)),
      el('td', {}, `${g.usage.cumulative_quantity} of ${g.quantity} ${g.unit}`), el('td', {}, open));
  });
  if (more) {
    more.tbody.append(...rows);
  } else {
    $('agreements-body').replaceChildren(rows.length
      ? table(['Agreement', 'Role', 'Counterparty', 'Service', 'Status', 'Amount', 'Used', ''], rows,
        `Agreements of ${agent}`)
      : empty('No agreements yet.'));
  }
  $('agreements-more').replaceChildren();
  if (page.next_cursor) {
    const next = el('button', { type: 'button', class: 'secondary' }, 'Show older agreements');
    const tbody = $('agreements-body').querySelector('tbody');
    next.addEventListener('click', () => act(next, () => loadAgreements({ cursor: page.next_cursor, tbody })));
    $('agreements-more').replaceChildren(next);
  }
}

async function showAgreement(id) {
  const g = await api('GET', `/usage-agreements/${q(id)}`);
  const steps = g.history.map((e) => el('li', {},
    el('time', { datetime: e.at }, when(e.at)), ' — ', el('strong', {}, e.kind), ` → ${e.status} by ${e.actor}`,
    e.tx_hash ? [' · tx ', el('code', { class: 'tx' }, e.tx_hash)] : null,
    e.block_number !== null && e.block_number !== undefined ? ` (block ${e.block_number})` : null));
  const heading = el('h3', { tabindex: '-1' }, `Timeline of ${g.agreement_id}`);
  $('agreement-detail').replaceChildren(heading,
    el('p', {}, `${g.buyer_agent_id} buys from ${g.seller_agent_id}: ${g.quantity} ${g.unit} at ${cents(g.price_per_unit_cents)}; `
      + `escrow ${g.onchain_agreement_id ? short(g.onchain_agreement_id) : 'not yet on chain'}; status ${g.status}.`),
    el('ol', { class: 'timeline' }, steps));
  heading.focus();
}

// ---- webhook deliveries -------------------------------------------------------------------

async function loadDeliveries() {
  const rows = [];
  for (const a of agents) {
    const failed = (await api('GET', `/agents/${q(a.agent_id)}/webhooks/deliveries?status=failed&limit=50`)).deliveries;
    const recent = (await api('GET', `/agents/${q(a.agent_id)}/webhooks/deliveries?limit=50`)).deliveries
      .filter((d) => d.status !== 'failed');
    for (const d of [...failed, ...recent]) rows.push([a.agent_id, d]);
  }
  // Failures first, across agents.
  rows.sort((x, y) => (x[1].status === 'failed' ? 0 : 1) - (y[1].status === 'failed' ? 0 : 1));
  $('deliveries-body').replaceChildren(rows.length
    ? table(['Event', 'Agent', 'Status', 'Attempts', 'Last answer', 'Endpoint', ''],
      rows.map(([agent, d]) => deliveryRow(agent, d)), 'Webhook deliveries')
    : empty('No deliveries yet.'));
}

function deliveryRow(agent, d) {
  let replay = null;
  if (d.status !== 'pending') {
    replay = el('button', { type: 'button', class: 'replay', 'aria-label': `Replay ${d.event_type} delivery ${d.delivery_id}` },
      'Replay');
    replay.addEventListener('click', () => act(replay, async () => {
      await api('POST', `/agents/${q(agent)}/webhooks/deliveries/${q(d.delivery_id)}/replay`);
      say(`Replay of ${d.delivery_id} queued.`);
      await loadDeliveries();
      $('deliveries-title').focus();
    }));
  }
  const attempt = d.attempt_log.length ? d.attempt_log[d.attempt_log.length - 1] : null;
  const last = !attempt ? '—' : attempt.status_code ? `HTTP ${attempt.status_code}` : attempt.error || '—';
  return el('tr', { 'data-delivery-id': d.delivery_id },
    el('th', { scope: 'row' }, d.event_type), el('td', {}, agent),
    el('td', { class: `delivery-status status-${d.status}` }, d.status), el('td', {}, String(d.attempts)),
    el('td', {}, last), el('td', {}, el('code', {}, d.url)), el('td', {}, replay));
}

// ---- receipts -----------------------------------------------------------------------------

async function loadReceipts() {
  const seen = new Map();
  for (const a of agents) {
    for (const r of (await api('GET', `/receipts?agent_id=${q(a.agent_id)}&limit=50`)).receipts) {
      seen.set(r.receipt_id, r);
    }
  }
  const rows = [...seen.values()].map((r) => {
    const verdict = el('td', { class: 'verdict' }, '');
    const verify = el('button', { type: 'button', class: 'verify secondary', 'aria-label': `Verify receipt ${r.receipt_id}` },
      'Verify');
    verify.addEventListener('click', () => act(verify, async () => {
      const v = await api('GET', `/receipts/verify/${q(r.receipt_id)}`);
      verdict.replaceChildren(el('span', { class: v.valid ? 'valid' : 'invalid' },
        v.valid ? 'valid' : `invalid: ${v.reasons.join('; ')}`));
      say(`Receipt ${r.receipt_id} is ${v.valid ? 'valid' : 'invalid'}.`);
    }));
    return el('tr', { 'data-receipt-id': r.receipt_id },
      el('th', { scope: 'row' }, r.kind), el('td', {}, el('code', {}, r.amount)),
      el('td', {}, el('code', {}, short(r.payer)), ' → ', el('code', {}, short(r.payee))),
      el('td', {}, el('code', {}, short(r.tx_hash))), el('td', {}, verify), verdict);
  });
  $('receipts-body').replaceChildren(rows.length
    ? table(['Kind', 'Amount (token base units)', 'From → to', 'Transaction', '', 'Verification'], rows, 'Receipts')
    : empty('No receipts yet.'));
}

// ---- start --------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    const candidate = $('token').value.trim();
    if (candidate) signIn(candidate);
  });
  $('sign-out').addEventListener('click', signOut);
  $('agreement-agent').addEventListener('change', () => section('agreements-body', () => loadAgreements()));
  if (token) signIn(token);
});
