// The public API (/api/v1) as the page uses it: the bearer token kept in
// sessionStorage (gone when the tab closes), JSON in and out, and errors
// turned into plain words for the operator.

const KEY = "firmflow.token";

/** The signed-in token, or null. */
export function token() {
  return sessionStorage.getItem(KEY);
}

/** Keeps (or with null forgets) the token for this tab. */
export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

/** Headers every call sends: the token goes here, never in a URL. */
export function authHeaders(extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

/** An answer the API refused: its status and JSON {error, message, field, problems}. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.field = body && body.field;
    this.problems = (body && Array.isArray(body.problems) && body.problems) || [];
  }
}

/** Calls `path` under /api/v1; resolves to the JSON body, rejects with ApiError. */
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: authHeaders(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, { error: "network", message: e.message });
  }
  noteServerClock(resp);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 300) };
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

let clockOffsetMs = 0;

function noteServerClock(resp) {
  const d = Date.parse(resp.headers.get("Date") || "");
  if (Number.isFinite(d)) clockOffsetMs = d - Date.now();
}

/**
 * The server's time as an ISO string, `backSecs` earlier: where a live
 * stream should start after a read (the browser's clock may be off).
 */
export function serverTime(backSecs = 0) {
  return new Date(Date.now() + clockOffsetMs - backSecs * 1000).toISOString();
}

/** What went wrong, in words an operator can act on. */
export function explain(err, doing = "") {
  const what = doing ? `Could not ${doing}: ` : "";
  if (!(err instanceof ApiError)) return `${what}${err && err.message ? err.message : err}`;
  const field = err.field ? ` (field: ${err.field})` : "";
  let text;
  switch (err.status) {
    case 0:
      text = `firmflowd cannot be reached (${err.message}). Check the network; the page retries the live stream by itself.`;
      break;
    case 401:
      text = `your token was not accepted (${err.message}). Sign in again.`;
      break;
    case 403:
      text = `your role does not allow this. ${err.message}`;
      break;
    case 404:
      text = `not found, or not in your datacenter. ${err.message}`;
      break;
    case 409:
      text = `not possible in the plan's current state. ${err.message}`;
      break;
    case 400:
    case 422:
      text = `the request has a problem${field}: ${err.message}`;
      break;
    case 503:
      text = `firmflowd is not ready (stopping, or its store is unreachable). ${err.message}`;
      break;
    default:
      text = `firmflowd answered ${err.status}: ${err.message}`;
  }
  const extra = err.problems.length > 1
    ? ` Problems: ${err.problems.map((p) => `${p.field ? p.field + ": " : ""}${p.message}`).join("; ")}`
    : "";
  return `${what}${text}${extra}`;
}
