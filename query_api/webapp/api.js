// The REST API and the tokens: the seed's AuthService, with what it leaves out done.

// Where the API is: this page's origin, or `?api=http://host:port` (the same files served
// from another origin, e.g. a frontend's dev server).
const base = (new URLSearchParams(location.search).get("api") || location.origin).replace(/\/$/, "");
export const API = `${base}/api/v1`;
export const WS = `${base.replace(/^http/, "ws")}/ws`;

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

/** One HTTP call; every write carries an Idempotency-Key (the caller passes one, so a retry
 * of the same request reuses it and cannot happen twice). */
async function call(method, path, body, token, key) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  if (key) headers["Idempotency-Key"] = key;
  return fetch(`${API}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function parse(response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new ApiError(response.status, body.detail);
  return body;
}

const WRITES = new Set(["POST", "PATCH", "DELETE"]);
const newKey = (method) => (WRITES.has(method) ? crypto.randomUUID() : undefined);

/** The tokens (kept in localStorage, as the seed does) and authenticated requests: on a 401
 * refresh once and retry. Events: "tokens" (a fresh pair), "signedout". */
export class Auth extends EventTarget {
  constructor() {
    super();
    this.schedule();
  }

  get access() { return localStorage.getItem("access_token"); }
  get refreshToken() { return localStorage.getItem("refresh_token"); }
  get signedIn() { return Boolean(this.refreshToken); }

  store(tokens) {
    localStorage.setItem("access_token", tokens.access_token);
    localStorage.setItem("refresh_token", tokens.refresh_token);
    this.dispatchEvent(new Event("tokens"));
    this.schedule();
  }

  /** Refreshes when 80% of what is left of the access token's life (its `exp`) has passed:
   * an open socket gets the fresh one (live.js) before the server would close it with 4401. */
  schedule() {
    clearTimeout(this.timer);
    let exp;
    try {
      const claims = this.access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      exp = JSON.parse(atob(claims)).exp;
    } catch {
      return;  // none, or not a JWT: the next 401 refreshes
    }
    const due = Math.max(0, (exp * 1000 - Date.now()) * 0.8);
    this.timer = setTimeout(() => this.refresh().catch(() => {}), due);
  }

  clear() {
    clearTimeout(this.timer);
    localStorage.removeItem("access_token");
    localStorage.removeItem("refresh_token");
    this.dispatchEvent(new Event("signedout"));
  }

  async register(email, password, display_name) {
    const body = await parse(await call("POST", "/auth/register", { email, password, display_name },
      null, newKey("POST")));
    this.store(body.tokens);
  }

  async login(email, password) {
    this.store(await parse(await call("POST", "/auth/login", { email, password }, null, newKey("POST"))));
  }

  async logout() {
    try {
      await call("POST", "/auth/logout", { refresh_token: this.refreshToken });
    } finally {
      this.clear();
    }
  }

  /** A refresh token works once: the server rotates it, and one presented twice looks stolen,
   * which ends the session. So refreshes never overlap: one at a time in this tab, and across
   * tabs (which share localStorage) a Web Lock; whoever waited finds the pair already fresh. */
  refresh() {
    this.refreshing ??= this.#refresh().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  async #refresh() {
    const stale = this.access;
    const run = async () => {
      if (this.access !== stale) return;  // another tab refreshed while we waited
      const response = await call("POST", "/auth/refresh", { refresh_token: this.refreshToken });
      if (!response.ok) {
        this.clear();  // the seed: back to the sign-in page
        throw new ApiError(response.status, "signed out: sign in again");
      }
      this.store(await response.json());
    };
    return navigator.locks ? navigator.locks.request("parley-refresh", run) : run();
  }

  /** An authenticated request: the parsed JSON answer, or an ApiError with the `detail`. */
  async request(method, path, body) {
    const key = newKey(method);
    let response = await call(method, path, body, this.access, key);
    if (response.status === 401 && this.refreshToken) {
      await this.refresh();
      response = await call(method, path, body, this.access, key);
    }
    return parse(response);
  }
}
