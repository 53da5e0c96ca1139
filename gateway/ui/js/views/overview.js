// Overview: totals, live charts of queued messages and message rates, listeners, and the
// definitions download and upload.

import { get, call } from '../api.js';
import { h, num, table, section, toast } from '../dom.js';
import { lineChart, ratesOf, valuesOf } from '../chart.js';
import { live } from '../live.js';

const tile = (n, label) => h('div', { class: 'tile' }, h('div', { class: 'n' }, num(n)), h('div', { class: 'l' }, label));

async function body() {
  const o = await get('/overview?msg_rates_age=600&msg_rates_incr=5');
  const t = o.object_totals || {};
  const q = o.queue_totals || {};
  const m = o.message_stats || {};
  return h('div', {},
    h('div', { class: 'tiles' },
      tile(t.connections, 'Connections'), tile(t.channels, 'Channels'), tile(t.queues, 'Queues'),
      tile(t.consumers, 'Consumers'), tile(q.messages_ready, 'Ready'),
      tile(q.messages_unacknowledged, 'Unacked'), tile(q.messages, 'Total messages')),
    h('div', { class: 'charts' },
      lineChart('Queued messages', [
        { label: 'Ready', points: valuesOf(q.messages_ready_details) },
        { label: 'Unacked', points: valuesOf(q.messages_unacknowledged_details) },
      ]),
      lineChart('Message rates', [
        { label: 'Publish', points: ratesOf(m.publish_details) },
        { label: 'Deliver / get', points: ratesOf(m.deliver_get_details) },
        { label: 'Ack', points: ratesOf(m.ack_details) },
      ], '/s')),
    section('Listeners', table([
      { title: 'Protocol', value: (l) => l.protocol },
      { title: 'Address', value: (l) => l.ip_address },
      { title: 'Port', value: (l) => l.port, num: true },
    ], o.listeners || [])),
    h('p', { class: 'empty' }, `${o.product_name} ${o.product_version} on ${o.node}`));
}

function definitions() {
  const file = h('input', { type: 'file', accept: 'application/json,.json', name: 'definitions' });
  const download = h('button', {
    class: 'secondary',
    onclick: async () => {
      try {
        const defs = await get('/definitions');
        const blob = new Blob([JSON.stringify(defs, null, 2)], { type: 'application/json' });
        const a = h('a', { href: URL.createObjectURL(blob), download: 'junction-definitions.json' });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (e) {
        toast(e.message, true);
      }
    },
  }, 'Download definitions');
  const upload = h('button', {
    onclick: async () => {
      const f = file.files[0];
      if (!f) return toast('Choose a definitions file first.', true);
      let defs;
      try {
        defs = JSON.parse(await f.text());
      } catch (e) {
        return toast(`That file is not JSON: ${e.message}`, true);
      }
      try {
        await call('POST', '/definitions', defs);
        toast('Definitions imported.');
      } catch (e) {
        toast(`Import refused: ${e.message}`, true);
      }
    },
  }, 'Upload definitions');
  return section('Definitions',
    h('p', {}, 'Users, vhosts, permissions, policies, exchanges, queues and bindings as RabbitMQ\'s definitions JSON.'),
    h('div', { class: 'actions' }, download, file, upload));
}

/** The overview page. */
export default async function overview() {
  const el = h('div', {});
  live(el, body);
  return h('div', {}, h('h1', {}, 'Overview'), el, definitions());
}
