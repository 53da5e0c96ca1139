// The management API as the console calls it: HTTP basic credentials kept for this tab only,
// JSON in and out, RabbitMQ's {"error", "reason"} turned into an exception.

const KEY = 'junction.credentials';

/** Remembers the credentials for this browser tab. */
export function login(user, pass) {
  const bytes = new TextEncoder().encode(`${user}:${pass}`);
  sessionStorage.setItem(KEY, 'Basic ' + btoa(String.fromCharCode(...bytes)));
}

/** Forgets them. */
export function logout() {
  sessionStorage.removeItem(KEY);
}

/** Whether credentials are remembered. */
export function loggedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

/** A refused or failed request: the HTTP status and RabbitMQ's reason. */
export class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

/**
 * Calls `method path` under /api with an optional JSON body (and `extra` headers); returns
 * the JSON answer.
 */
export async function call(method, path, body, extra = {}) {
  const headers = { 'X-Requested-With': 'XMLHttpRequest', ...extra };
  const auth = sessionStorage.getItem(KEY);
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch('/api' + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { reason: text }; }
  }
  if (!res.ok) {
    const reason = (data && (data.reason || data.error)) || res.statusText;
    throw new ApiError(res.status, reason);
  }
  return data;
}

/** GET. */
export const get = (path) => call('GET', path);

/** One path segment, escaped (vhost "/" is "%2F"). */
export const seg = (s) => encodeURIComponent(s);
