// The live feed: `/ws?token=...`, and after any reconnect `&cursor=<last cursor seen>`, so the
// server replays what was missed, in order and once, before live events go on.
import { WS } from "./api.js";

const TYPING_EVERY_MS = 2000;  // the server relays at most one per 1.8 s

export class Live {
  /** `onFrame(frame)` for every frame; `onStatus("connecting"|"live"|"reconnecting"|"offline")`. */
  constructor(auth, onFrame, onStatus) {
    this.auth = auth;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.cursor = null;
    this.delay = 1000;
    this.typedAt = new Map();
  }

  /** Resolves once the first socket is open (or after 5 s without one: the page works on
   * REST meanwhile, and the socket keeps trying). */
  start() {
    this.stopped = false;
    addEventListener("online", this.#online);
    addEventListener("offline", this.#offline);
    this.auth.addEventListener("tokens", this.#sendToken);
    const opened = new Promise((resolve) => {
      this.opened = resolve;
      setTimeout(resolve, 5000);
    });
    this.#connect();
    return opened;
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.#online);
    removeEventListener("offline", this.#offline);
    this.auth.removeEventListener("tokens", this.#sendToken);
    clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  typing(chatId) {
    const now = Date.now();
    if (now - (this.typedAt.get(chatId) ?? 0) < TYPING_EVERY_MS) return;
    this.typedAt.set(chatId, now);
    this.#send({ type: "typing", chat_id: chatId });
  }

  #connect() {
    clearTimeout(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    const query = new URLSearchParams({ token: this.auth.access });
    if (this.cursor) query.set("cursor", this.cursor);
    const ws = this.ws = new WebSocket(`${WS}?${query}`);
    this.onStatus("connecting");
    ws.onopen = () => {
      this.delay = 1000;
      this.onStatus("live");
      this.opened();
    };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.event === "resync.required") this.cursor = null;  // too old: REST reloads
      this.onFrame(frame);
      // only once the page has the frame: a reconnect resumes after what the page holds
      if (frame.cursor) this.cursor = frame.cursor;
    };
    ws.onclose = (event) => this.#closed(event.code);
  }

  #closed(code) {
    if (this.stopped) return;
    this.onStatus(navigator.onLine ? "reconnecting" : "offline");
    if (code === 4401) {  // the token expired or the session ended: refresh, then resume
      this.auth.refresh().then(() => this.#connect(), () => {});
      return;
    }
    if (!navigator.onLine) return;  // "online" reconnects
    this.timer = setTimeout(() => this.#connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 30000);
  }

  // Offline, a socket may look open for minutes with nothing coming through: drop it now and
  // resume from the cursor the moment the browser is back online.
  #offline = () => { this.ws?.close(); };
  #online = () => { if (!this.stopped) this.#connect(); };

  // A fresh access token goes to the open socket, which would otherwise close with 4401 when
  // the old one expires.
  #sendToken = () => { this.#send({ type: "auth", token: this.auth.access }); };

  #send(frame) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}
