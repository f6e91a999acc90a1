// The console's one road to the server: the public API (/v1/...) and the session routes, called
// with the session cookie (HttpOnly: this code never sees it) and, on every call that changes
// anything, the session's CSRF token. The key a user signs in with is sent once, in a POST body,
// and kept nowhere: not in a URL, not in localStorage or sessionStorage, not in this module.

/** Where the ingest is mounted: "" or its ROOT_PATH, read from the shell's own address. */
export const ROOT = location.pathname.slice(0, location.pathname.lastIndexOf("/console/"));

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/** A non-2xx answer: its status and the JSON error body `{error: {code, message, ...}}`. */
export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `the server answered ${status}`);
    this.name = "ApiFailure";
    this.status = status;
    this.body = body;
    this.code = body?.error?.code ?? null;
    this.field = body?.error?.field ?? null;
  }
}

let session = null; // {role, tenant_id, csrf, expires_at} or null

/** The signed-in session, or null. */
export function currentSession() {
  return session;
}

/** Replace the session and tell the shell (it redraws the nav and the acting-as banner). */
export function setSession(next) {
  session = next;
  window.dispatchEvent(new CustomEvent("hookyard:session"));
}

/** Learn the session after a reload (the cookie survives it, the CSRF token in memory does not). */
export async function loadSession() {
  try {
    setSession(await api("GET", "/console/session"));
  } catch (error) {
    if (!(error instanceof ApiFailure) || error.status !== 401) throw error;
    setSession(null);
  }
  return session;
}

export async function signIn(key) {
  setSession(await api("POST", "/console/session", { key }));
  return session;
}

export async function signOut() {
  try {
    await api("DELETE", "/console/session");
  } finally {
    setSession(null);
  }
}

/** An admin session answers the tenant pages for `tenantId` (null: for nobody). */
export async function actAs(tenantId) {
  setSession(await api("PUT", "/console/session", { tenant_id: tenantId }));
  return session;
}

/** Call the API: `path` below the ingest's root ("/v1/endpoints"); resolves to the JSON answer (null when empty). */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (session && !SAFE_METHODS.has(method)) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(ROOT + path, init);
  const data = await readJson(response);
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/console/session")) {
      setSession(null);
      location.hash = "#/sign-in";
    }
    throw new ApiFailure(response.status, data);
  }
  return data;
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { code: "not_json", message: text.slice(0, 200) } };
  }
}
