// The admin UI's calls to the REST API (/api/v1): api() sends the session cookie and, on state-changing
// calls, the session's CSRF token; errors come back as APIError with the server's {code, description}.
import { el, clear, toast } from "./ui.js";

// session is filled once at start from GET /api/v1/session.
export const session = { csrf: null, username: null, authNone: false, role: null };

export class APIError extends Error {
  constructor(status, body) {
    super((body && body.description) || ("HTTP " + status));
    this.status = status;
    this.body = body || {};
  }
}

export function toLogin() {
  location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search + location.hash);
}

export async function api(method, path, body, opts) {
  opts = opts || {};
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch("/api/v1" + path, { method, headers, body: payload, credentials: "same-origin" });
  if (resp.status === 401 && !session.authNone) {
    toLogin();
    throw new APIError(401, { description: "Session ended: log in again" });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = text; }
  }
  if (!resp.ok) throw new APIError(resp.status, typeof data === "object" ? data : { description: String(data) });
  if (opts.withTotal) return { data, total: Number(resp.headers.get("X-Total-Count") || 0) };
  return data;
}

// act runs a state-changing call and reports its outcome; it returns the answer or undefined on error.
export async function act(fn, okMsg) {
  try {
    const r = await fn();
    if (okMsg) toast(okMsg, "ok");
    return r === undefined || r === null ? true : r; // an empty answer (200 without a body) is a success too
  } catch (e) {
    toast(e.message, "err");
    return undefined;
  }
}

export function showError(container, e) {
  clear(container, el("p", { class: "error", role: "alert" }, e.message));
}
