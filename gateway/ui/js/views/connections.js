// Connections of every protocol, with close; channels of AMQP connections.

import { get, call, seg } from '../api.js';
import { h, num, table, act } from '../dom.js';
import { live } from '../live.js';

const since = (ms) => (ms ? new Date(ms).toLocaleString() : '');

function clientOf(c) {
  const p = c.client_properties || {};
  return p.product || p.client_id || p.connection_name || '';
}

/** The connections page. */
export async function connectionList() {
  const list = h('div', {});
  const refresh = live(list, async () => table([
    { title: 'Name', value: (c) => c.name },
    { title: 'Protocol', value: (c) => c.protocol },
    { title: 'User', value: (c) => c.user },
    { title: 'Virtual host', value: (c) => c.vhost, narrow: true },
    { title: 'Client', value: clientOf, narrow: true },
    { title: 'Channels', value: (c) => num(c.channels), num: true, narrow: true },
    { title: 'Connected', value: (c) => since(c.connected_at), narrow: true },
    { title: '', value: (c) => h('button', {
      class: 'danger',
      'data-close': c.name,
      onclick: async () => {
        const reason = prompt(`Close connection ${c.name}? The client is told this reason:`, 'Closed from the management console');
        if (reason === null) return;
        await act(() => call('DELETE', `/connections/${seg(c.name)}`, undefined, { 'X-Reason': reason }), 'Connection closed.');
        refresh();
      },
    }, 'Close') },
  ], await get('/connections'), 'No connections.'));
  return h('div', {}, h('h1', {}, 'Connections'), list);
}

/** The channels page. */
export async function channelList() {
  const list = h('div', {});
  live(list, async () => table([
    { title: 'Channel', value: (c) => c.name },
    { title: 'User', value: (c) => c.user, narrow: true },
    { title: 'Virtual host', value: (c) => c.vhost, narrow: true },
    { title: 'Mode', value: (c) => [c.confirm ? 'confirm' : '', c.transactional ? 'tx' : ''].filter(Boolean).join(', ') },
    { title: 'Prefetch', value: (c) => num(c.prefetch_count), num: true },
    { title: 'Consumers', value: (c) => num(c.consumer_count), num: true },
    { title: 'Unacked', value: (c) => num(c.messages_unacknowledged), num: true },
  ], await get('/channels'), 'No channels.'));
  return h('div', {}, h('h1', {}, 'Channels'), list);
}
