// Users with their tags and permissions, and virtual hosts: list, add, delete.

import { get, call, seg } from '../api.js';
import { h, num, rate, table, section, form, act } from '../dom.js';
import { live } from '../live.js';
import { vhostNames } from './common.js';

const TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'none'];

/** The users page (administrators). */
export async function userList() {
  const users = h('div', {});
  const perms = h('div', {});
  const refreshUsers = live(users, async () => table([
    { title: 'Name', value: (u) => u.name },
    { title: 'Tags', value: (u) => h('span', {}, (u.tags || []).map((t) => h('span', { class: 'tag' }, t))) },
    { title: '', value: (u) => h('button', {
      class: 'danger',
      onclick: async () => {
        if (!confirm(`Delete user "${u.name}"? Its connections are closed.`)) return;
        await act(() => call('DELETE', `/users/${seg(u.name)}`), `User "${u.name}" deleted.`);
        refreshUsers();
        refreshPerms();
      },
    }, 'Delete') },
  ], await get('/users')), 0);
  const refreshPerms = live(perms, async () => table([
    { title: 'User', value: (p) => p.user },
    { title: 'Virtual host', value: (p) => p.vhost },
    { title: 'Configure', value: (p) => p.configure },
    { title: 'Write', value: (p) => p.write },
    { title: 'Read', value: (p) => p.read },
    { title: '', value: (p) => h('button', {
      class: 'secondary',
      onclick: () => act(() => call('DELETE', `/permissions/${seg(p.vhost)}/${seg(p.user)}`), 'Permissions cleared.').then(refreshPerms),
    }, 'Clear') },
  ], await get('/permissions'), 'No permissions.'), 0);
  const vhosts = await vhostNames();
  const add = form([
    { name: 'name', label: 'Username', required: true },
    { name: 'password', label: 'Password', type: 'password', required: true },
    { name: 'tags', label: 'Tags', type: 'select', options: TAGS, value: 'management' },
    { name: 'vhost', label: 'Give access to', type: 'select', options: ['(none)', ...vhosts], value: vhosts[0] },
  ], 'Add user', async (v) => {
    await call('PUT', `/users/${seg(v.name)}`, { password: v.password, tags: v.tags === 'none' ? '' : v.tags });
    if (v.vhost !== '(none)') {
      await call('PUT', `/permissions/${seg(v.vhost)}/${seg(v.name)}`, { configure: '.*', write: '.*', read: '.*' });
    }
    refreshUsers();
    refreshPerms();
    return `User "${v.name}" added${v.vhost !== '(none)' ? ` with full access to "${v.vhost}"` : ''}.`;
  });
  const setPerms = form([
    { name: 'user', label: 'User', required: true },
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts, value: vhosts[0] },
    { name: 'configure', label: 'Configure regexp', value: '.*' },
    { name: 'write', label: 'Write regexp', value: '.*' },
    { name: 'read', label: 'Read regexp', value: '.*' },
  ], 'Set permissions', async (v) => {
    await call('PUT', `/permissions/${seg(v.vhost)}/${seg(v.user)}`, { configure: v.configure, write: v.write, read: v.read });
    refreshPerms();
    return `Permissions of "${v.user}" on "${v.vhost}" set.`;
  });
  return h('div', {}, h('h1', {}, 'Users'), users, section('Add a user', add),
    section('Permissions', perms, h('h2', {}, 'Set permissions'), setPerms));
}

/** The virtual hosts page. */
export async function vhostList() {
  const list = h('div', {});
  const refresh = live(list, async () => table([
    { title: 'Name', value: (v) => v.name },
    { title: 'Description', value: (v) => v.description || '', narrow: true },
    { title: 'Ready', value: (v) => num(v.messages_ready), num: true },
    { title: 'Unacked', value: (v) => num(v.messages_unacknowledged), num: true },
    { title: 'Incoming', value: (v) => rate((v.message_stats || {}).publish_details), num: true, narrow: true },
    { title: '', value: (v) => h('button', {
      class: 'danger',
      onclick: async () => {
        if (!confirm(`Delete vhost "${v.name}" with every queue, exchange and message in it?`)) return;
        await act(() => call('DELETE', `/vhosts/${seg(v.name)}`), `Vhost "${v.name}" deleted.`);
        refresh();
      },
    }, 'Delete') },
  ], await get('/vhosts')));
  const add = form([
    { name: 'name', label: 'Name', required: true },
    { name: 'description', label: 'Description' },
    { name: 'tags', label: 'Tags (comma-separated)' },
  ], 'Add virtual host', async (v) => {
    await call('PUT', `/vhosts/${seg(v.name)}`, { description: v.description, tags: v.tags });
    refresh();
    return `Vhost "${v.name}" added.`;
  });
  return h('div', {}, h('h1', {}, 'Virtual hosts'), list, section('Add a virtual host', add));
}
