// Small DOM helpers. Text from the broker only ever goes in as text (never as HTML), so a
// queue named "<img onerror=...>" is shown, not run.

/** An element: `h('a', {href: '#/'}, 'text', child, ...)`. Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A number with thousands separators. */
export const num = (n) => (n === undefined || n === null ? '' : Number(n).toLocaleString('en-US'));

/** A rate as "12.5/s". */
export const rate = (details) => {
  const r = details && typeof details.rate === 'number' ? details.rate : 0;
  return `${r.toLocaleString('en-US', { maximumFractionDigits: 1 })}/s`;
};

/**
 * A table: `columns` are {title, value: row => node|text, num?: bool, narrow?: bool (hidden on
 * phones)}; `rows` the data. Empty data shows `empty`.
 */
export function table(columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('div', { class: 'empty' }, empty);
  const cls = (c) => [c.num ? 'num' : '', c.narrow ? 'hide-narrow' : ''].join(' ').trim() || undefined;
  return h('div', { class: 'scroll' },
    h('table', {},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: cls(c) }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: cls(c) }, c.value(r))))))));
}

/** A definition list of [label, value] pairs. */
export const facts = (pairs) =>
  h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

/** A panel with a heading. */
export const section = (title, ...body) => h('section', { class: 'panel' }, h('h2', {}, title), ...body);

/**
 * A form of `fields` ({name, label, type: text|password|number|select|checkbox|textarea,
 * options, value, placeholder, required}) whose submit calls `onsubmit(values, form)`;
 * errors it throws are shown under the form.
 */
export function form(fields, submitLabel, onsubmit) {
  const result = h('div', { class: 'result', role: 'status' });
  const inputs = {};
  const body = fields.map((f) => {
    let input;
    if (f.type === 'select') {
      input = h('select', { name: f.name }, (f.options || []).map((o) =>
        h('option', { value: o, selected: o === f.value }, o)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { name: f.name, placeholder: f.placeholder }, f.value || '');
    } else if (f.type === 'checkbox') {
      input = h('input', { type: 'checkbox', name: f.name, checked: !!f.value });
      inputs[f.name] = input;
      return h('label', { class: 'check' }, input, f.label);
    } else {
      input = h('input', {
        type: f.type || 'text', name: f.name, value: f.value ?? '', placeholder: f.placeholder,
        required: f.required, autocomplete: f.type === 'password' ? 'new-password' : 'off',
      });
    }
    inputs[f.name] = input;
    return h('label', {}, f.label, input);
  });
  const el = h('form', { class: 'inline' }, body, h('button', { type: 'submit' }, submitLabel));
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const values = {};
    for (const [k, input] of Object.entries(inputs)) {
      values[k] = input.type === 'checkbox' ? input.checked : input.value;
    }
    result.textContent = '';
    result.className = 'result';
    try {
      const said = await onsubmit(values, el);
      if (said) result.replaceChildren(said);
    } catch (e) {
      result.className = 'result error';
      result.textContent = e.message;
    }
  });
  return h('div', {}, el, result);
}

let toastTimer;

/** A short message in the corner; `bad` for failures. */
export function toast(text, bad = false) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

/** Runs `action`, toasting `done` (or the error); returns whether it succeeded. */
export async function act(action, done) {
  try {
    await action();
    if (done) toast(done);
    return true;
  } catch (e) {
    toast(e.message, true);
    return false;
  }
}
