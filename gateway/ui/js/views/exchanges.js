// Exchanges: the list with rates, declaring one; an exchange's page with its bindings, publish,
// and the route test: which queues a routing key reaches, without publishing.

import { get, call, seg } from '../api.js';
import { h, num, rate, table, facts, section, form, act } from '../dom.js';
import { live } from '../live.js';
import { vhostNames, queueLink, exchangeLink, features, jsonOrEmpty } from './common.js';

const stats = (e) => e.message_stats || {};

/** The exchanges page. */
export async function exchangeList() {
  const list = h('div', {});
  const refresh = live(list, async () => table([
    { title: 'Virtual host', value: (e) => e.vhost, narrow: true },
    { title: 'Name', value: (e) => exchangeLink(e.vhost, e.name) },
    { title: 'Type', value: (e) => e.type },
    { title: 'Features', value: features, narrow: true },
    { title: 'In', value: (e) => rate(stats(e).publish_in_details), num: true },
    { title: 'Out', value: (e) => rate(stats(e).publish_out_details), num: true },
  ], await get('/exchanges')));
  const vhosts = await vhostNames();
  const add = form([
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts, value: vhosts[0] },
    { name: 'name', label: 'Name', required: true },
    { name: 'type', label: 'Type', type: 'select', options: ['direct', 'fanout', 'topic', 'headers'], value: 'direct' },
    { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
    { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox' },
    { name: 'internal', label: 'Internal', type: 'checkbox' },
    { name: 'arguments', label: 'Arguments (JSON)', placeholder: '{"alternate-exchange": "ae"}' },
  ], 'Add exchange', async (v) => {
    await call('PUT', `/exchanges/${seg(v.vhost)}/${seg(v.name)}`, {
      type: v.type, durable: v.durable, auto_delete: v.auto_delete, internal: v.internal,
      arguments: jsonOrEmpty(v.arguments, 'Arguments'),
    });
    refresh();
    return `Exchange "${v.name}" declared.`;
  });
  return h('div', {}, h('h1', {}, 'Exchanges'), list, section('Add an exchange', add));
}

const destination = (vhost, b) =>
  b.destination_type === 'queue' ? queueLink(vhost, b.destination) : exchangeLink(vhost, b.destination);

/** An exchange's page. */
export async function exchangePage(vhost, name) {
  const base = `/exchanges/${seg(vhost)}/${seg(name)}`;
  const isDefault = name === 'amq.default' || name === '';
  const top = h('div', {});
  live(top, async () => {
    const e = await get(base);
    const s = stats(e);
    return h('div', { class: 'panel' }, facts([
      ['Virtual host', e.vhost], ['Type', e.type], ['Features', features(e)],
      ['Policy', e.policy || 'none'], ['Arguments', JSON.stringify(e.arguments || {})],
      ['In', `${rate(s.publish_in_details)} (${num(s.publish_in)} in all)`],
      ['Out', `${rate(s.publish_out_details)} (${num(s.publish_out)} in all)`],
    ]));
  });
  const out = h('div', {});
  const refreshOut = live(out, async () => table([
    { title: 'To', value: (b) => destination(vhost, b) },
    { title: 'Kind', value: (b) => b.destination_type },
    { title: 'Routing key', value: (b) => b.routing_key },
    { title: 'Arguments', value: (b) => JSON.stringify(b.arguments || {}), narrow: true },
    { title: '', value: (b) => h('button', {
      class: 'secondary',
      onclick: () => act(() => call('DELETE', `/bindings/${seg(vhost)}/e/${seg(name)}/${b.destination_type === 'queue' ? 'q' : 'e'}/${seg(b.destination)}/${seg(b.properties_key)}`), 'Binding removed.').then(refreshOut),
    }, 'Unbind') },
  ], isDefault ? [] : await get(`${base}/bindings/source`),
  isDefault ? 'The default exchange routes to the queue named by the routing key.' : 'No bindings from this exchange.'), 0);
  const bind = form([
    { name: 'kind', label: 'To', type: 'select', options: ['queue', 'exchange'], value: 'queue' },
    { name: 'destination', label: 'Name', required: true },
    { name: 'routing_key', label: 'Routing key' },
    { name: 'arguments', label: 'Arguments (JSON)' },
  ], 'Bind', async (v) => {
    const kind = v.kind === 'queue' ? 'q' : 'e';
    await call('POST', `/bindings/${seg(vhost)}/e/${seg(name)}/${kind}/${seg(v.destination)}`,
      { routing_key: v.routing_key, arguments: jsonOrEmpty(v.arguments, 'Arguments') });
    refreshOut();
    return `Bound to ${v.kind} "${v.destination}".`;
  });
  const routeResult = h('div', { class: 'route-result' });
  const routeTest = form([
    { name: 'routing_key', label: 'Routing key', placeholder: 'sensors.kitchen.temp' },
    { name: 'headers', label: 'Headers (JSON)' },
  ], 'Where would it go?', async (v) => {
    const r = await call('POST', `${base}/route`, { routing_key: v.routing_key, properties: { headers: jsonOrEmpty(v.headers, 'Headers') } });
    routeResult.replaceChildren(r.routed_to.length
      ? h('ul', {}, r.routed_to.map((q) => h('li', {}, queueLink(vhost, q))))
      : h('p', { class: 'empty' }, 'No queue: a message with this key would be unroutable.'));
    return `Reaches ${r.routed_to.length} queue${r.routed_to.length === 1 ? '' : 's'}. Nothing was published.`;
  });
  const publish = form([
    { name: 'routing_key', label: 'Routing key' },
    { name: 'payload', label: 'Payload', type: 'textarea' },
    { name: 'headers', label: 'Headers (JSON)' },
    { name: 'persistent', label: 'Persistent', type: 'checkbox' },
  ], 'Publish message', async (v) => {
    const properties = { headers: jsonOrEmpty(v.headers, 'Headers') };
    if (v.persistent) properties.delivery_mode = 2;
    const r = await call('POST', `${base}/publish`, { routing_key: v.routing_key, payload: v.payload, payload_encoding: 'string', properties });
    return r.routed ? 'Message published and routed.' : 'Message published, but no queue took it (unroutable).';
  });
  const del = h('button', {
    class: 'danger',
    disabled: isDefault || name.startsWith('amq.'),
    onclick: async () => {
      if (!confirm(`Delete exchange "${name}" and its bindings?`)) return;
      if (await act(() => call('DELETE', base), `Exchange "${name}" deleted.`)) location.hash = '#/exchanges';
    },
  }, 'Delete exchange');
  return h('div', {},
    h('h1', {}, `Exchange ${isDefault ? '(AMQP default)' : name}`), top,
    section('Bindings from this exchange', out, isDefault ? null : h('h2', {}, 'Add a binding'), isDefault ? null : bind),
    section('Where would this routing key go?', routeTest, routeResult),
    section('Publish a message', publish),
    section('Delete', del));
}
