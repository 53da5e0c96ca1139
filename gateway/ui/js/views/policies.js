// Policies: list, add or change, delete.

import { get, call, seg } from '../api.js';
import { h, table, section, form, act } from '../dom.js';
import { live } from '../live.js';
import { vhostNames, jsonOrEmpty } from './common.js';

/** The policies page. */
export default async function policyList() {
  const list = h('div', {});
  const refresh = live(list, async () => table([
    { title: 'Virtual host', value: (p) => p.vhost, narrow: true },
    { title: 'Name', value: (p) => p.name },
    { title: 'Pattern', value: (p) => p.pattern },
    { title: 'Apply to', value: (p) => p['apply-to'] },
    { title: 'Priority', value: (p) => p.priority, num: true },
    { title: 'Definition', value: (p) => JSON.stringify(p.definition) },
    { title: '', value: (p) => h('button', {
      class: 'danger',
      onclick: async () => {
        if (!confirm(`Delete policy "${p.name}"?`)) return;
        await act(() => call('DELETE', `/policies/${seg(p.vhost)}/${seg(p.name)}`), `Policy "${p.name}" deleted.`);
        refresh();
      },
    }, 'Delete') },
  ], await get('/policies'), 'No policies.'));
  const vhosts = await vhostNames();
  const add = form([
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts, value: vhosts[0] },
    { name: 'name', label: 'Name', required: true },
    { name: 'pattern', label: 'Pattern (regexp)', required: true, value: '.*' },
    { name: 'apply_to', label: 'Apply to', type: 'select', options: ['queues', 'exchanges', 'all'], value: 'queues' },
    { name: 'priority', label: 'Priority', type: 'number', value: 0 },
    { name: 'definition', label: 'Definition (JSON)', placeholder: '{"max-length": 1000}', required: true },
  ], 'Add / update policy', async (v) => {
    await call('PUT', `/policies/${seg(v.vhost)}/${seg(v.name)}`, {
      pattern: v.pattern, 'apply-to': v.apply_to, priority: Number(v.priority) || 0,
      definition: jsonOrEmpty(v.definition, 'Definition'),
    });
    refresh();
    return `Policy "${v.name}" set.`;
  });
  return h('div', {}, h('h1', {}, 'Policies'), list, section('Add or update a policy', add));
}
