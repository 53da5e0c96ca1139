// The console: log in, then one page per hash route (#/queues/%2F/orders), drawn from the
// management API.

import * as api from './api.js';
import { h, form } from './dom.js';
import { nextPage } from './live.js';
import overview from './views/overview.js';
import { queueList, queuePage } from './views/queues.js';
import { exchangeList, exchangePage } from './views/exchanges.js';
import { connectionList, channelList } from './views/connections.js';
import { userList, vhostList } from './views/access.js';
import policyList from './views/policies.js';

const routes = [
  [/^$/, overview, 'overview'],
  [/^queues$/, queueList, 'queues'],
  [/^queues\/([^/]+)\/([^/]+)$/, queuePage, 'queues'],
  [/^exchanges$/, exchangeList, 'exchanges'],
  [/^exchanges\/([^/]+)\/([^/]*)$/, exchangePage, 'exchanges'],
  [/^connections$/, connectionList, 'connections'],
  [/^channels$/, channelList, 'channels'],
  [/^users$/, userList, 'users'],
  [/^vhosts$/, vhostList, 'vhosts'],
  [/^policies$/, policyList, 'policies'],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const menu = document.getElementById('menu');

function showLogin(reason) {
  nextPage();
  nav.hidden = true;
  menu.hidden = true;
  document.getElementById('who').hidden = true;
  const login = form([
    { name: 'user', label: 'Username', required: true },
    { name: 'pass', label: 'Password', type: 'password', required: true },
  ], 'Log in', async (v) => {
    api.login(v.user, v.pass);
    try {
      await api.get('/whoami');
    } catch (e) {
      api.logout();
      throw new Error(e.status === 401 ? 'Login failed: wrong username or password.' : e.message);
    }
    route();
  });
  login.querySelector('input[name=pass]').setAttribute('autocomplete', 'current-password');
  main.replaceChildren(h('div', { class: 'login panel' },
    h('h1', {}, 'Junction'), reason ? h('p', { class: 'error' }, reason) : null, login));
  login.querySelector('input').focus();
}

async function route() {
  if (!api.loggedIn()) return showLogin();
  let me;
  try {
    me = await api.get('/whoami');
  } catch (e) {
    if (e.status === 401) { api.logout(); return showLogin('Your session ended; log in again.'); }
    if (e.status === 403) { api.logout(); return showLogin(e.message); }
    throw e;
  }
  nav.hidden = false;
  menu.hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('whoami').textContent = `${me.name} (${me.tags.join(', ') || 'no tags'})`;
  const path = decodeURI(location.hash.replace(/^#\/?/, '')).replace(/\/$/, '');
  const raw = location.hash.replace(/^#\/?/, '').replace(/\/$/, '');
  nextPage();
  for (const [re, view, name] of routes) {
    const m = raw.match(re);
    if (!m) continue;
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.view === name);
    nav.classList.remove('open');
    menu.setAttribute('aria-expanded', 'false');
    const args = m.slice(1).map(decodeURIComponent);
    main.replaceChildren(h('p', { class: 'empty' }, 'Loading…'));
    try {
      main.replaceChildren(await view(...args, me));
    } catch (e) {
      if (e.status === 401) { api.logout(); return showLogin('Your session ended; log in again.'); }
      main.replaceChildren(h('h1', {}, 'Cannot show this page'), h('p', { class: 'error' }, e.message));
    }
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, `No page at "${path}".`));
}

document.getElementById('logout').addEventListener('click', () => {
  api.logout();
  location.hash = '#/';
  showLogin();
});
menu.addEventListener('click', () => {
  const open = nav.classList.toggle('open');
  menu.setAttribute('aria-expanded', String(open));
});
window.addEventListener('hashchange', route);
route();
