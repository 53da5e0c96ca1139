// What several pages share: the vhost picker, the features column, links to objects.

import { get, seg } from '../api.js';
import { h } from '../dom.js';

/** The names of the vhosts the user may see. */
export async function vhostNames() {
  return (await get('/vhosts')).map((v) => v.name);
}

/** A link to a queue's page. */
export const queueLink = (vhost, name) => h('a', { href: `#/queues/${seg(vhost)}/${seg(name)}` }, name);

/** A link to an exchange's page ("" is the default exchange). */
export const exchangeLink = (vhost, name) =>
  h('a', { href: `#/exchanges/${seg(vhost)}/${seg(name || 'amq.default')}` }, name || '(AMQP default)');

/** Short tags for durable, auto-delete, exclusive, internal, arguments and policy. */
export function features(o) {
  const tags = [];
  if (o.durable) tags.push(['D', 'durable']);
  if (o.auto_delete) tags.push(['AD', 'auto-delete']);
  if (o.exclusive) tags.push(['Excl', 'exclusive']);
  if (o.internal) tags.push(['I', 'internal']);
  for (const k of Object.keys(o.arguments || {})) tags.push([k.replace(/^x-/, ''), k]);
  const out = tags.map(([t, title]) => h('span', { class: 'tag', title }, t));
  if (o.policy) out.push(h('span', { class: 'tag', title: 'policy' }, `policy: ${o.policy}`));
  return h('span', {}, out);
}

/** What a JSON text box holds, as an object ({} when empty); `what` names it in the error. */
export function jsonOrEmpty(text, what) {
  if (!text || !text.trim()) return {};
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} must be JSON: ${e.message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v;
}
