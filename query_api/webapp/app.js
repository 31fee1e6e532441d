// The views and what changes them: REST loads the state, WebSocket frames keep it current.
// Every string from the server goes into the page as text (textContent), never as HTML.
import { Auth } from "./api.js";
import { Live } from "./live.js";
import { describe, drawWaveform, startRecording, upload } from "./voice.js";

const PAGE = 50;
const EMOJI = ["👍", "❤️", "😂"];
const COUNTED = new Set(["text", "voice"]);  // what the server's unread_count counts
const TYPING_SHOWN_MS = 5000;

const auth = new Auth();
const state = {
  me: null,
  chats: new Map(),  // id -> the chat as GET /chats gives it (unread_count, last_message)
  open: null,        // { id, messages: Map, members: Map, typing: Map } of the chat on screen
  live: null,
  composing: null,   // { mode: "reply" | "edit", message }
  recording: null,
};

const $ = (selector) => document.querySelector(selector);

/** An element with properties (`on*`: listeners, `dataset`) and children. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el[key] = value;
  }
  el.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

/** Runs an action; its failure is shown (the API's `detail`), not thrown away. */
async function act(action, where = "#error") {
  try {
    $(where).textContent = "";
    await action();
  } catch (error) {
    console.error(error);
    $(where).textContent = error.message;
  }
}

const time = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const seconds = (ms) => `${Math.floor(ms / 60000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;
const preview = (m) => (!m ? "" : m.type === "voice" ? "🎤 Voice message" : m.content ?? "");
const userName = (id) => state.open?.members.get(id)?.display_name ?? `user #${id}`;

// -- signing in -------------------------------------------------------------------------

function showSignIn() {
  $("#app").hidden = true;
  $("#signin").hidden = false;
}

$("#auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const { email, password, name } = Object.fromEntries(new FormData(event.target));
  act(async () => {
    if (event.submitter?.name === "signup") await auth.register(email, password, name || email);
    else await auth.login(email, password);
    event.target.reset();
    await enter();
  }, "#auth-form .error");
});

$("#signout").addEventListener("click", () => act(() => auth.logout()));
auth.addEventListener("signedout", () => {
  state.live?.stop();
  closeChat();
  state.chats.clear();
  renderChats();
  showSignIn();
});

async function enter() {
  state.me = await auth.request("GET", "/users/me");
  $("#me").textContent = `${state.me.display_name} #${state.me.id}`;
  $("#me").dataset.id = state.me.id;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  state.live = new Live(auth, onFrame, (status) => {
    $("#status").dataset.state = status;
    $("#status").textContent = status;
  });
  // live first, then REST: whatever happens in between arrives as a frame, not lost
  await state.live.start();
  await inOrder(loadChats);
}

// -- the chat list ----------------------------------------------------------------------

async function loadChats() {
  const chats = await auth.request("GET", "/chats");
  state.chats = new Map(chats.map((chat) => [chat.id, chat]));
  if (state.open && !state.chats.has(state.open.id)) closeChat();
  renderChats();
}

/** One chat as the server counts it (its unread count after a read on another device). */
async function refreshChat(id) {
  try {
    state.chats.set(id, await auth.request("GET", `/chats/${id}`));
  } catch (error) {
    if (error.status !== 403 && error.status !== 404) throw error;
    state.chats.delete(id);
  }
  renderChats();
}

function renderChats() {
  const activity = (chat) => Date.parse(chat.last_message?.ts ?? chat.created_at);
  const chats = [...state.chats.values()].sort((a, b) => activity(b) - activity(a));
  $("#chats").replaceChildren(...chats.map((chat) => h("li", {
    className: chat.id === state.open?.id ? "open" : "",
    dataset: { id: chat.id },
    onclick: () => act(() => openChat(chat.id)),
  },
  h("span", { className: "title" }, chat.title ?? ""),
  h("span", { className: "last" }, preview(chat.last_message)),
  h("span", { className: "badge" }, chat.unread_count ? String(chat.unread_count) : ""))));
}

$("#new-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act(async () => {
    const chat = await auth.request("POST", "/chats", {
      title: form.get("title").trim() || undefined,
      is_group: form.get("group") === "on",
      member_ids: form.get("members").split(/[\s,]+/).filter(Boolean).map(Number),
    });
    event.target.reset();
    await refreshChat(chat.id);
    await openChat(chat.id);
  });
});

// -- a chat -----------------------------------------------------------------------------

async function openChat(id) {
  const open = state.open = { id, messages: new Map(), members: new Map(), typing: new Map() };
  compose(null);
  $("#messages").replaceChildren();
  $("#chat").hidden = false;
  renderChats();
  const [members, page] = await Promise.all([
    auth.request("GET", `/chats/${id}/members`),
    auth.request("GET", `/messages?chat_id=${id}&limit=${PAGE}`),
  ]);
  if (state.open !== open) return;  // another chat was opened meanwhile
  members.forEach((member) => open.members.set(member.id, member));
  page.forEach(putMessage);  // frames that came first stay: a message is put once, by id
  $("#older").hidden = page.length < PAGE;
  renderHeader();
  scrollToEnd();
  await markRead();
}

function closeChat() {
  state.open = null;
  $("#chat").hidden = true;
}

$("#older").addEventListener("click", () => act(async () => {
  const open = state.open;
  const oldest = Math.min(...open.messages.keys());
  const page = await auth.request("GET", `/messages?chat_id=${open.id}&before_id=${oldest}&limit=${PAGE}`);
  if (state.open !== open) return;
  const list = $("#messages");
  const fromEnd = list.scrollHeight - list.scrollTop;
  page.forEach(putMessage);
  list.scrollTop = list.scrollHeight - fromEnd;  // the messages read stay where they were
  $("#older").hidden = page.length < PAGE;
}));

function renderHeader() {
  const chat = state.chats.get(state.open.id);
  $("#chat-title").textContent = chat?.title ?? "";
  $("#members").replaceChildren(...[...state.open.members.values()]
    .filter((member) => member.id !== state.me.id)
    .map((member) => h("li", { dataset: { userId: member.id, online: member.online } },
      member.display_name,
      !member.online && member.last_seen_at ? ` (seen ${time(member.last_seen_at)})` : "")));
}

/** Moves my read marker to the newest message on screen (the server answers my new count). */
async function markRead() {
  const open = state.open;
  const chat = state.chats.get(open?.id);
  const newest = open && Math.max(0, ...open.messages.keys());
  if (!newest || !chat || document.hidden || (chat.last_read_message_id ?? 0) >= newest) return;
  const read = await auth.request("PUT", `/chats/${open.id}/read`, { message_id: newest });
  Object.assign(chat, { last_read_message_id: read.last_read_message_id, unread_count: read.unread_count });
  renderChats();
}
document.addEventListener("visibilitychange", () => act(markRead));

function scrollToEnd() {
  $("#messages").scrollTop = $("#messages").scrollHeight;
}

// -- messages ---------------------------------------------------------------------------

/** Shows a message of the open chat in id order, replacing what was shown for it before. */
function putMessage(message) {
  state.open.messages.set(message.id, message);
  const element = renderMessage(message);
  const list = $("#messages");
  const shown = list.querySelector(`:scope > [data-id="${message.id}"]`);
  if (shown) {
    shown.replaceWith(element);
    return;
  }
  const next = [...list.children].find((li) => Number(li.dataset.id) > message.id);
  list.insertBefore(element, next ?? null);
}

function renderMessage(m) {
  if (m.type === "system") return h("li", { className: "message system", dataset: { id: m.id } }, m.content ?? "");
  const mine = m.author_id === state.me.id;
  const quoted = m.reply_to_id && state.open.messages.get(m.reply_to_id);
  const react = (emoji) => () => act(() => toggleReaction(m, emoji));
  return h("li", { className: mine ? "message mine" : "message", dataset: { id: m.id, type: m.type } },
    h("div", { className: "author" }, userName(m.author_id)),
    m.reply_to_id && h("div", { className: "quote", dataset: { replyTo: m.reply_to_id } },
      quoted ? `${userName(quoted.author_id)}: ${preview(quoted)}` : "a message"),
    m.type === "voice" ? renderVoice(m) : h("div", { className: "text" }, m.content ?? ""),
    h("div", { className: "meta" }, time(m.ts), m.edited_at && h("span", { className: "edited" }, " · edited"),
      mine && ticks(m.id)),
    h("div", { className: "reactions" }, ...m.reactions.map((r) => h("button", {
      type: "button", className: r.user_ids.includes(state.me.id) ? "mine" : "",
      dataset: { emoji: r.emoji }, onclick: react(r.emoji),
    }, `${r.emoji} ${r.count}`))),
    h("div", { className: "actions" },
      h("button", { type: "button", className: "reply", onclick: () => compose("reply", m) }, "Reply"),
      ...EMOJI.map((emoji) => h("button", { type: "button", className: "react", dataset: { emoji }, onclick: react(emoji) }, emoji)),
      mine && m.type === "text" && h("button", { type: "button", className: "edit", onclick: () => compose("edit", m) }, "Edit")));
}

/** ✓ sent, ✓✓ seen: another member's read marker is at or past the message. */
function ticks(messageId) {
  const seen = [...state.open.members.values()]
    .some((member) => member.id !== state.me.id && (member.last_read_message_id ?? 0) >= messageId);
  return h("span", { className: "ticks", dataset: { seen } }, seen ? " ✓✓" : " ✓");
}

function renderTicks() {
  for (const shown of $("#messages").querySelectorAll(".ticks")) {
    shown.replaceWith(ticks(Number(shown.closest("li").dataset.id)));
  }
}

function renderVoice(m) {
  const { attachment_id, duration_ms, waveform } = m.payload;
  const canvas = h("canvas", { width: 192, height: 32 });
  const audio = h("audio", { preload: "none" });
  const button = h("button", { type: "button", className: "play", onclick: () => act(async () => {
    // a fresh download URL (it lives 5 minutes) the first time, and again after an error
    if (!audio.src) audio.src = (await auth.request("GET", `/attachments/${attachment_id}`)).url;
    if (audio.paused) await audio.play(); else audio.pause();
  }) }, "▶");
  const draw = () => drawWaveform(canvas, waveform, (audio.currentTime * 1000) / duration_ms);
  audio.addEventListener("timeupdate", draw);
  audio.addEventListener("play", () => { button.textContent = "⏸"; });
  audio.addEventListener("pause", () => { button.textContent = "▶"; });
  audio.addEventListener("error", () => audio.removeAttribute("src"));
  requestAnimationFrame(draw);  // once it is in the page: its colours come from the CSS
  return h("div", { className: "voice" }, button, canvas, h("span", { className: "duration" }, seconds(duration_ms)), audio);
}

// -- writing ----------------------------------------------------------------------------

function compose(mode, message) {
  state.composing = mode ? { mode, message } : null;
  $("#composing").hidden = !mode;
  const input = $("#composer").elements.text;
  if (!mode) return;
  $("#composing span").textContent = mode === "edit" ? "Editing your message"
    : `Replying to ${userName(message.author_id)}: ${preview(message)}`;
  if (mode === "edit") input.value = message.content;
  input.focus();
}

$("#cancel").addEventListener("click", () => compose(null));

$("#composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  const content = input.value.trim();
  const { id } = state.open;
  const composing = state.composing;
  if (!content) return;
  act(async () => {
    const message = composing?.mode === "edit"
      ? await auth.request("PATCH", `/messages/${composing.message.id}`, { content })
      : await auth.request("POST", "/messages", {
        chat_id: id, type: "text", content,
        reply_to_id: composing?.mode === "reply" ? composing.message.id : undefined,
      });
    input.value = "";
    compose(null);
    upsert(message);
    scrollToEnd();
  });
});

$("#composer").elements.text.addEventListener("input", () => state.live.typing(state.open.id));

async function toggleReaction(message, emoji) {
  const mine = message.reactions.find((r) => r.emoji === emoji)?.user_ids.includes(state.me.id);
  if (mine) await auth.request("DELETE", `/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`);
  else await auth.request("POST", `/messages/${message.id}/reactions`, { emoji });
  // the frame that follows changes the view, for this page as for everyone else's
}

$("#record").addEventListener("click", () => act(async () => {
  const button = $("#record");
  if (!state.recording) {
    const started = Date.now();
    state.recording = await startRecording();
    button.dataset.recording = true;
    state.recording.ticker = setInterval(() => {
      button.dataset.elapsed = Date.now() - started;
      button.textContent = `■ Stop ${seconds(Date.now() - started)}`;
    }, 250);
    return;
  }
  const { stop, ticker } = state.recording;
  state.recording = null;
  clearInterval(ticker);
  Object.assign(button.dataset, { recording: false, elapsed: 0 });
  button.textContent = "Sending…";
  try {
    const blob = await stop();
    const [payload, attachment_id] = await Promise.all([describe(blob), upload(auth, blob)]);
    upsert(await auth.request("POST", "/messages", {
      chat_id: state.open.id, type: "voice", payload: { attachment_id, ...payload },
    }));
    scrollToEnd();
  } finally {
    button.textContent = "🎤 Record";
  }
}));

// -- live frames ------------------------------------------------------------------------

/** A message, new or changed, into the chat list and, when its chat is open, the view. */
function upsert(message, created = false) {
  const chat = state.chats.get(message.chat_id);
  if (!chat) return refreshChat(message.chat_id);  // a chat this page has not loaded yet
  const open = state.open?.id === message.chat_id ? state.open : null;
  const isNew = !chat.last_message || message.id > chat.last_message.id;
  if (isNew || chat.last_message.id === message.id) chat.last_message = message;
  const fromOther = message.author_id !== state.me.id;
  if (created && isNew && fromOther && !open && COUNTED.has(message.type)) chat.unread_count += 1;
  renderChats();
  if (!open) return undefined;
  putMessage(message);
  if (!created) return undefined;
  const author = open.members.get(message.author_id);  // posting moves the author's marker
  if (author) author.last_read_message_id = Math.max(author.last_read_message_id ?? 0, message.id);
  clearTimeout(open.typing.get(message.author_id));
  open.typing.delete(message.author_id);
  renderTyping();
  renderTicks();
  scrollToEnd();
  return fromOther ? markRead() : undefined;
}

function reacted({ message_id, chat_id, user_id, emoji }, added) {
  const message = state.open?.id === chat_id && state.open.messages.get(message_id);
  if (!message) return;
  let reaction = message.reactions.find((r) => r.emoji === emoji);
  if (added && !reaction) message.reactions.push(reaction = { emoji, count: 0, user_ids: [] });
  if (!reaction || added === reaction.user_ids.includes(user_id)) return;  // a replay
  reaction.user_ids = added ? [...reaction.user_ids, user_id] : reaction.user_ids.filter((id) => id !== user_id);
  reaction.count = reaction.user_ids.length;
  message.reactions = message.reactions.filter((r) => r.count > 0);
  putMessage(message);
  renderTicks();
}

function readMoved({ chat_id, user_id, last_read_message_id }) {
  if (user_id === state.me.id) return refreshChat(chat_id);  // mine, maybe on another device
  const member = state.open?.id === chat_id && state.open.members.get(user_id);
  if (member) {
    member.last_read_message_id = last_read_message_id;
    renderTicks();
  }
  return undefined;
}

function showTyping({ chat_id, user_id }) {
  const open = state.open?.id === chat_id ? state.open : null;
  if (!open) return;
  clearTimeout(open.typing.get(user_id));
  open.typing.set(user_id, setTimeout(() => {
    open.typing.delete(user_id);
    renderTyping();
  }, TYPING_SHOWN_MS));
  renderTyping();
}

function renderTyping() {
  const names = [...(state.open?.typing.keys() ?? [])].map(userName);
  $("#typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

function presenceChanged({ user_id, online, last_seen_at }) {
  const member = state.open?.members.get(user_id);
  if (!member) return;
  Object.assign(member, { online, last_seen_at });
  renderHeader();
}

/** A change of a chat itself (created, renamed, members, deleted): the list is reloaded, and
 * the open chat's members with it. */
async function chatChanged() {
  await loadChats();
  if (state.open) {
    const members = await auth.request("GET", `/chats/${state.open.id}/members`);
    state.open.members = new Map(members.map((member) => [member.id, member]));
    renderHeader();
  }
}

const FRAMES = {
  "message.created": (m) => upsert(m, true),
  // a frame carries `reactions: []` (a function of its event): keep the ones shown
  "message.updated": (m) => upsert({ ...m, reactions: state.open?.messages.get(m.id)?.reactions ?? [] }),
  "message.deleted": ({ id, chat_id }) => {
    if (state.open?.id === chat_id) {
      state.open.messages.delete(id);
      $(`#messages > [data-id="${id}"]`)?.remove();
    }
    return refreshChat(chat_id);
  },
  "message.reaction_added": (r) => reacted(r, true),
  "message.reaction_removed": (r) => reacted(r, false),
  "chat.read": readMoved,
  "chat.created": chatChanged,
  "chat.updated": chatChanged,
  "chat.member_added": chatChanged,
  "chat.member_removed": chatChanged,
  "chat.deleted": chatChanged,
  "typing": showTyping,
  "presence": presenceChanged,
  // the cursor was older than the stream keeps: what was missed comes from REST
  "resync.required": async () => {
    await loadChats();
    if (state.open) await openChat(state.open.id);
  },
};

// Frames are applied one after the other, each to the state the previous one left (a
// handler may wait for REST: the chat list a `chat.created` reloads comes before the
// `message.created` that follows it). The first load of the list queues up the same way.
let applied = Promise.resolve();
function inOrder(task) {
  const run = applied.then(task);
  applied = run.catch(() => {});
  return run;
}

function onFrame({ event, data }) {
  const handle = FRAMES[event];
  if (handle) inOrder(() => act(() => handle(data)));
}

if (auth.signedIn) act(enter); else showSignIn();
