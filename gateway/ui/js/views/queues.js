// Queues: the list with depths and rates, declaring one; a queue's page with its consumers and
// bindings, publish, get, purge and delete.

import { get, call, seg } from '../api.js';
import { h, num, rate, table, facts, section, form, act } from '../dom.js';
import { live } from '../live.js';
import { vhostNames, queueLink, exchangeLink, features, jsonOrEmpty } from './common.js';

const stats = (q) => q.message_stats || {};

/** Rows the queue list draws at most. */
const SHOWN = 500;

/** The queues page. */
export async function queueList() {
  const filter = h('input', { type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter queues' });
  const list = h('div', {});
  const refresh = live(list, async () => {
    const qs = await get('/queues');
    const f = filter.value.trim().toLowerCase();
    const matching = f ? qs.filter((q) => q.name.toLowerCase().includes(f)) : qs;
    // A page stays quick with thousands of queues: the first SHOWN, and how many more.
    const shown = matching.slice(0, SHOWN);
    const more = matching.length > SHOWN
      ? h('p', { class: 'empty' }, `Showing ${num(SHOWN)} of ${num(matching.length)} queues; filter by name to find others.`)
      : null;
    return h('div', {}, more, table([
      { title: 'Virtual host', value: (q) => q.vhost, narrow: true },
      { title: 'Name', value: (q) => queueLink(q.vhost, q.name) },
      { title: 'Features', value: features, narrow: true },
      { title: 'Consumers', value: (q) => num(q.consumers), num: true, narrow: true },
      { title: 'Ready', value: (q) => num(q.messages_ready), num: true },
      { title: 'Unacked', value: (q) => num(q.messages_unacknowledged), num: true },
      { title: 'Total', value: (q) => num(q.messages), num: true, narrow: true },
      { title: 'Incoming', value: (q) => rate(stats(q).publish_details), num: true },
      { title: 'Deliver / get', value: (q) => rate(stats(q).deliver_get_details), num: true, narrow: true },
      { title: 'Ack', value: (q) => rate(stats(q).ack_details), num: true, narrow: true },
    ], shown, f ? 'No queue matches.' : 'No queues yet.'));
  });
  filter.addEventListener('input', refresh);
  const vhosts = await vhostNames();
  const add = form([
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts, value: vhosts[0] },
    { name: 'name', label: 'Name', required: true },
    { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
    { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox' },
    { name: 'arguments', label: 'Arguments (JSON)', placeholder: '{"x-message-ttl": 60000}' },
  ], 'Add queue', async (v) => {
    const body = { durable: v.durable, auto_delete: v.auto_delete, arguments: jsonOrEmpty(v.arguments, 'Arguments') };
    await call('PUT', `/queues/${seg(v.vhost)}/${seg(v.name)}`, body);
    refresh();
    return `Queue "${v.name}" declared.`;
  });
  return h('div', {}, h('h1', {}, 'Queues'), h('div', { class: 'filter' }, filter), list, section('Add a queue', add));
}

function details(q) {
  const s = stats(q);
  return h('div', {},
    h('div', { class: 'tiles' },
      ...[['Ready', q.messages_ready], ['Unacked', q.messages_unacknowledged], ['Total', q.messages],
        ['Consumers', q.consumers]].map(([l, n]) =>
        h('div', { class: 'tile' }, h('div', { class: 'n', 'data-count': l.toLowerCase() }, num(n)), h('div', { class: 'l' }, l)))),
    h('div', { class: 'panel' }, facts([
      ['Virtual host', q.vhost], ['Type', q.type], ['State', q.state], ['Features', features(q)],
      ['Policy', q.policy || 'none'], ['Arguments', JSON.stringify(q.arguments || {})],
      ['Paged out', num(q.messages_paged_out)],
      ['Incoming', rate(s.publish_details)], ['Deliver / get', rate(s.deliver_get_details)],
      ['Redelivered', rate(s.redeliver_details)], ['Ack', rate(s.ack_details)],
      ['Published in all', num(s.publish)],
    ])));
}

function messageView(m) {
  const p = m.properties || {};
  return h('div', { class: 'msg' },
    facts([
      ['Exchange', m.exchange || '(AMQP default)'], ['Routing key', m.routing_key],
      ['Redelivered', String(m.redelivered)], ['Left in queue', num(m.message_count)],
      ['Properties', JSON.stringify(p)],
    ]),
    h('pre', { class: 'payload' }, m.payload_encoding === 'base64' ? `(base64) ${m.payload}` : m.payload));
}

/** A queue's page. */
export async function queuePage(vhost, name) {
  const base = `/queues/${seg(vhost)}/${seg(name)}`;
  const top = h('div', {});
  const refreshTop = live(top, async () => details(await get(base)));
  const consumers = h('div', {});
  live(consumers, async () => {
    const all = (await get(`/consumers/${seg(vhost)}`)).filter((c) => c.queue && c.queue.name === name);
    return table([
      { title: 'Tag', value: (c) => c.consumer_tag },
      { title: 'Connection', value: (c) => (c.channel_details || {}).connection_name || '' },
      { title: 'Channel', value: (c) => (c.channel_details || {}).number ?? '', num: true },
      { title: 'Ack', value: (c) => (c.ack_required ? 'manual' : 'auto') },
      { title: 'Prefetch', value: (c) => num(c.prefetch_count), num: true },
      { title: 'Active', value: (c) => (c.active ? 'yes' : 'no') },
    ], all, 'No consumers.');
  });
  const bindings = h('div', {});
  const refreshBindings = live(bindings, async () => table([
    { title: 'From', value: (b) => exchangeLink(vhost, b.source) },
    { title: 'Routing key', value: (b) => b.routing_key },
    { title: 'Arguments', value: (b) => JSON.stringify(b.arguments || {}), narrow: true },
    { title: '', value: (b) => b.source === '' ? '' : h('button', {
      class: 'secondary',
      onclick: () => act(() => call('DELETE', `/bindings/${seg(vhost)}/e/${seg(b.source)}/q/${seg(name)}/${seg(b.properties_key)}`), 'Binding removed.').then(refreshBindings),
    }, 'Unbind') },
  ], await get(`${base}/bindings`)), 0);
  const bind = form([
    { name: 'source', label: 'From exchange', required: true },
    { name: 'routing_key', label: 'Routing key' },
    { name: 'arguments', label: 'Arguments (JSON)' },
  ], 'Bind', async (v) => {
    await call('POST', `/bindings/${seg(vhost)}/e/${seg(v.source)}/q/${seg(name)}`,
      { routing_key: v.routing_key, arguments: jsonOrEmpty(v.arguments, 'Arguments') });
    refreshBindings();
    return `Bound from "${v.source}".`;
  });
  const publish = form([
    { name: 'payload', label: 'Payload', type: 'textarea' },
    { name: 'headers', label: 'Headers (JSON)' },
    { name: 'persistent', label: 'Persistent', type: 'checkbox' },
  ], 'Publish message', async (v) => {
    const properties = { headers: jsonOrEmpty(v.headers, 'Headers') };
    if (v.persistent) properties.delivery_mode = 2;
    const r = await call('POST', `/exchanges/${seg(vhost)}/amq.default/publish`,
      { routing_key: name, payload: v.payload, payload_encoding: 'string', properties });
    refreshTop();
    return r.routed ? 'Message published.' : 'Message published, but not routed to any queue.';
  });
  const got = h('div', { class: 'messages' });
  const getForm = form([
    { name: 'ackmode', label: 'Ack mode', type: 'select', value: 'ack_requeue_true',
      options: ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'] },
    { name: 'count', label: 'Messages', type: 'number', value: 1 },
  ], 'Get messages', async (v) => {
    const msgs = await call('POST', `${base}/get`, { count: Number(v.count) || 1, ackmode: v.ackmode, encoding: 'auto', truncate: 50000 });
    got.replaceChildren(...msgs.map(messageView));
    refreshTop();
    const requeued = v.ackmode.endsWith('true') ? ' (requeued)' : ' (removed from the queue)';
    return msgs.length ? `${msgs.length} message${msgs.length > 1 ? 's' : ''} fetched${requeued}.` : 'The queue is empty.';
  });
  const purge = h('button', {
    class: 'danger',
    onclick: async () => {
      if (!confirm(`Purge every ready message of queue "${name}"?`)) return;
      const before = (await get(base)).messages_ready;
      if (await act(() => call('DELETE', `${base}/contents`), `Purged ${num(before)} message${before === 1 ? '' : 's'}.`)) refreshTop();
    },
  }, 'Purge messages');
  const ifEmpty = h('input', { type: 'checkbox', name: 'if-empty' });
  const ifUnused = h('input', { type: 'checkbox', name: 'if-unused' });
  const del = h('button', {
    class: 'danger',
    onclick: async () => {
      if (!confirm(`Delete queue "${name}" and every message in it?`)) return;
      const q = new URLSearchParams();
      if (ifEmpty.checked) q.set('if-empty', 'true');
      if (ifUnused.checked) q.set('if-unused', 'true');
      if (await act(() => call('DELETE', `${base}?${q}`), `Queue "${name}" deleted.`)) location.hash = '#/queues';
    },
  }, 'Delete queue');
  return h('div', {},
    h('h1', {}, `Queue ${name}`), top,
    section('Consumers', consumers),
    section('Bindings', bindings, h('h2', {}, 'Add a binding to this queue'), bind),
    section('Publish a message', h('p', {}, 'Published to the default exchange with this queue\'s name as the routing key.'), publish),
    section('Get messages', h('p', {}, 'Getting messages is destructive with "requeue false": they leave the queue.'), getForm, got),
    section('Purge and delete', h('div', { class: 'actions' }, purge, del,
      h('label', { class: 'check' }, ifEmpty, 'only if empty'), h('label', { class: 'check' }, ifUnused, 'only if unused'))));
}
