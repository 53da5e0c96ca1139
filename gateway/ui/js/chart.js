// A line chart on a canvas: time on x, values on y, a few series with a legend. No library.

import { h } from './dom.js';

const COLORS = ['#0b6bcb', '#d97706', '#15803d', '#9333ea', '#dc2626'];

/** Rounds `max` up to a "nice" axis top (1, 2, 5 × 10^n). */
function niceTop(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

const short = (n) => (n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(1)}`);

/**
 * A chart titled `title`. `series` are {label, points: [[ms, value], ...]}; `unit` follows the
 * y labels ("/s"). Returns the element; the canvas is drawn once it is in the page.
 */
export function lineChart(title, series, unit = '') {
  const canvas = h('canvas', { role: 'img', 'aria-label': title });
  const legend = h('div', { class: 'legend' }, series.map((s, i) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : 0;
    const swatch = h('i', {});
    swatch.style.background = COLORS[i % COLORS.length];
    return h('span', {}, swatch, `${s.label} ${short(last)}${unit}`);
  }));
  const el = h('div', { class: 'panel chart' }, h('h2', {}, title), canvas, legend);
  requestAnimationFrame(() => draw(canvas, series, unit));
  return el;
}

function draw(canvas, series, unit) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  if (!w || !hgt) return;
  canvas.width = w * ratio;
  canvas.height = hgt * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  const all = series.flatMap((s) => s.points);
  const pad = { l: 44, r: 8, t: 8, b: 20 };
  const t0 = Math.min(...all.map((p) => p[0]), Date.now() - 60_000);
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const top = niceTop(Math.max(0, ...all.map((p) => p[1])));
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (v) => hgt - pad.b - (v / top) * (hgt - pad.t - pad.b);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5d6875';
  g.strokeStyle = '#e5e9ee';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    g.beginPath();
    g.moveTo(pad.l, y(v) + 0.5);
    g.lineTo(w - pad.r, y(v) + 0.5);
    g.stroke();
    g.fillText(short(v) + unit, 2, y(v) + 4);
  }
  const stamp = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  g.fillText(stamp(t0), pad.l, hgt - 4);
  const end = stamp(t1);
  g.fillText(end, w - pad.r - g.measureText(end).width, hgt - 4);
  series.forEach((s, i) => {
    if (!s.points.length) return;
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 2;
    g.beginPath();
    s.points.forEach(([t, v], j) => (j ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
  });
}

/**
 * Rates per second from RabbitMQ's `samples` (cumulative counts, newest first), oldest first.
 */
export function ratesOf(details) {
  const s = (details && details.samples) || [];
  const out = [];
  for (let i = s.length - 1; i > 0; i--) {
    const [a, b] = [s[i], s[i - 1]];
    const dt = (b.timestamp - a.timestamp) / 1000;
    if (dt > 0) out.push([b.timestamp, Math.max(0, (b.sample - a.sample) / dt)]);
  }
  return out;
}

/** The samples of a gauge (queued messages), oldest first. */
export function valuesOf(details) {
  return ((details && details.samples) || []).map((p) => [p.timestamp, p.sample]).reverse();
}
