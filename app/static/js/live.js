// The live tail: /ws/logs (protocol in app/web/live.py), rendered newest-last like `tail -f`.
//
// Nothing is missed across a reconnect: the client remembers the largest id it has seen
// and reconnects with ?after=<that id>; the server sends what was stored since, then
// continues live. The first connection starts from the newest stored log the query API
// returns (the recent backlog is shown), or from "now" when there is no query API.

import { describeError, formatCount, LEVELS, say, signInIfNeeded } from "./dom.js";
import { matches, readFilters, toParams } from "./filters.js";
import { logOf, logRow } from "./logrow.js";

const MAX_ROWS = 2000; // rows kept in the DOM (and kept while paused)
const BACKLOG = 200; // recent logs shown when the page opens
const STICK_PX = 48; // "at the bottom" within this many pixels
const WATCHDOG_MS = 75_000; // the server pings when idle; silence this long means dead
const MAX_BACKOFF_MS = 10_000;

export class LiveTail {
  /** `ui` holds the elements (see main.js); `onFilters` hears about filter changes. */
  constructor(ui, { onFilters = () => {}, onState = () => {} } = {}) {
    this.ui = ui;
    this.onFilters = onFilters;
    this.onState = onState;
    this.filters = readFilters(ui.form);
    this.lastId = null; // largest id seen: where a reconnect resumes
    this.socket = null;
    this.attempt = 0;
    this.refused = false;
    this.awaitingAck = false; // a filter change the server has not confirmed yet
    this.paused = false;
    this.pending = []; // arrived while paused (the newest MAX_ROWS)
    this.pendingCount = 0;
    this.queue = []; // to render on the next animation frame
    this.frame = 0;
    this.stick = true; // follow new rows (the user has not scrolled up)
    this.unseen = 0;
    this.received = 0;
    this.dropped = 0;
  }

  async start() {
    this.wire();
    await this.loadBacklog();
    this.connect();
  }

  wire() {
    const { ui } = this;
    ui.pause.addEventListener("click", () => (this.paused ? this.resume() : this.pause()));
    ui.resume.addEventListener("click", () => this.resume());
    ui.clear.addEventListener("click", () => this.clear());
    ui.jump.addEventListener("click", () => this.scrollToEnd());
    ui.droppedDismiss.addEventListener("click", () => (ui.dropped.hidden = true));
    ui.truncatedDismiss.addEventListener("click", () => (ui.truncated.hidden = true));
    ui.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    window.addEventListener("online", () => this.retryNow());
  }

  /** Show the newest stored logs and resume after them (needs GET /logs; optional). */
  async loadBacklog() {
    const recent = await this.fetchLogs(toParams(this.filters), BACKLOG);
    if (recent === null) return; // no query API here: start from "now"
    if (recent.length) {
      this.lastId = Math.max(...recent.map((log) => log.id));
      this.enqueue(recent.reverse());
    } else {
      // Nothing matches yet: resume after the newest log of any kind, not from id 0.
      const newest = await this.fetchLogs(new URLSearchParams(), 1);
      this.lastId = newest?.length ? newest[0].id : 0;
    }
  }

  async fetchLogs(params, limit) {
    params.set("limit", limit);
    try {
      const response = signInIfNeeded(await fetch(`/logs?${params}`, { headers: { Accept: "application/json" } }));
      return response.ok ? (await response.json()).logs : null;
    } catch {
      return null;
    }
  }

  connect() {
    clearTimeout(this.retryTimer);
    const params = toParams(this.filters);
    if (this.lastId !== null) params.set("after", this.lastId);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/logs?${params}`);
    this.socket = socket;
    this.awaitingAck = false;
    this.setState("connecting");
    socket.addEventListener("message", (event) => this.onMessage(event.data));
    socket.addEventListener("close", () => this.socket === socket && this.reconnectLater());
    this.armWatchdog();
  }

  onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    this.armWatchdog();
    if (message.type === "logs") this.receive(message.logs || []);
    else if (message.type === "filters") this.onFiltersConfirmed(message.filters || {});
    else if (message.type === "dropped") this.noteDropped(message.count || 0);
    else if (message.type === "catchup_truncated") this.noteTruncated(message);
    else if (message.type === "error") this.onServerError(message);
    else if (message.type === "stalled") this.setState("connecting");
    else if (message.type === "resync") this.setState(this.paused ? "paused" : "live");
  }

  onFiltersConfirmed(confirmed) {
    this.attempt = 0;
    this.refused = false;
    this.awaitingAck = !sameFilters(confirmed, this.filters);
    // The filters changed while this connection was being opened: send them now.
    if (this.awaitingAck) this.socket?.send(JSON.stringify({ type: "filter", ...this.filters }));
    say(this.ui.error, "");
    this.setState(this.paused ? "paused" : "live");
  }

  onServerError(message) {
    this.refused = true;
    say(this.ui.error, `The server refused the filters: ${describeError("", message)}`);
  }

  receive(logs) {
    let fresh = this.lastId === null ? logs : logs.filter((log) => log.id > this.lastId);
    if (!fresh.length) return;
    this.lastId = Math.max(this.lastId ?? 0, ...fresh.map((log) => log.id));
    this.received += fresh.length;
    // Until the server confirms a filter change, hold new logs to the new filters here.
    if (this.awaitingAck) fresh = fresh.filter((log) => matches(this.filters, log));
    if (this.paused) {
      this.pending = this.pending.concat(fresh).slice(-MAX_ROWS);
      this.pendingCount += fresh.length;
      this.showPaused();
    } else {
      this.enqueue(fresh);
    }
    this.showStatus();
  }

  enqueue(logs) {
    if (!logs.length) return;
    this.queue = this.queue.concat(logs).slice(-MAX_ROWS);
    this.frame ||= requestAnimationFrame(() => this.flush());
  }

  /** Render queued logs in one batch per frame, trim the oldest, follow or count. */
  flush() {
    this.frame = 0;
    const logs = this.queue;
    this.queue = [];
    const fragment = document.createDocumentFragment();
    for (const log of logs) fragment.append(logRow(log));
    this.ui.list.append(fragment);
    this.trim();
    this.ui.empty.hidden = this.ui.list.childElementCount > 0;
    if (this.stick) {
      this.scrollToEnd();
    } else {
      this.unseen += logs.length;
      this.ui.jumpText.textContent = `${formatCount(this.unseen)} new below`;
      this.ui.jump.hidden = false;
    }
    this.showStatus();
  }

  trim() {
    const { list, scroller } = this.ui;
    const excess = list.childElementCount - MAX_ROWS;
    if (excess <= 0) return;
    const firstKept = list.children[excess];
    const shift = firstKept.offsetTop - list.firstElementChild.offsetTop;
    for (let i = 0; i < excess; i++) list.firstElementChild.remove();
    // Keep what the reader is looking at in place when rows vanish above it.
    if (!this.stick) scroller.scrollTop -= shift;
  }

  onScroll() {
    const { scroller } = this.ui;
    const gap = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
    this.stick = gap <= STICK_PX;
    if (this.stick) {
      this.unseen = 0;
      this.ui.jump.hidden = true;
    }
  }

  scrollToEnd() {
    const { scroller } = this.ui;
    scroller.scrollTop = scroller.scrollHeight;
    this.stick = true;
    this.unseen = 0;
    this.ui.jump.hidden = true;
  }

  pause() {
    this.paused = true;
    this.pendingCount = 0;
    this.ui.pause.setAttribute("aria-pressed", "true");
    this.showPaused();
    this.setState("paused");
  }

  resume() {
    this.paused = false;
    const logs = this.pending;
    this.pending = [];
    this.pendingCount = 0;
    this.ui.pause.setAttribute("aria-pressed", "false");
    this.ui.pause.textContent = "Pause";
    this.ui.paused.hidden = true;
    this.stick = true;
    this.enqueue(logs);
    this.setState(this.socket?.readyState === WebSocket.OPEN ? "live" : "connecting");
  }

  showPaused() {
    const n = this.pendingCount;
    const text = `Paused: ${formatCount(n)} new ${n === 1 ? "log" : "logs"} arrived.`;
    this.ui.pausedText.textContent = n > MAX_ROWS ? `${text} The newest ${MAX_ROWS} are kept.` : text;
    this.ui.pause.textContent = n ? `Resume (${formatCount(n)} new)` : "Resume";
    this.ui.paused.hidden = false;
  }

  clear() {
    this.ui.list.replaceChildren();
    this.queue = [];
    this.ui.empty.hidden = false;
    this.scrollToEnd();
    this.showStatus();
  }

  /** The filter form changed: tell the server, and drop rows the new filters exclude. */
  setFilters() {
    const next = readFilters(this.ui.form);
    if (JSON.stringify(next) === JSON.stringify(this.filters)) return;
    this.filters = next;
    const keep = (log) => matches(next, log);
    for (const row of [...this.ui.list.children]) if (!keep(logOf(row))) row.remove();
    this.queue = this.queue.filter(keep);
    this.pending = this.pending.filter(keep);
    this.ui.empty.hidden = this.ui.list.childElementCount > 0;
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.awaitingAck = true;
      this.socket.send(JSON.stringify({ type: "filter", ...next }));
    } // else: the next connection carries them in its query string
    this.onFilters(next);
    this.showStatus();
  }

  noteDropped(count) {
    this.dropped += count;
    this.ui.droppedText.textContent =
      `This view fell behind and the server skipped ${formatCount(this.dropped)} ` +
      `${this.dropped === 1 ? "log" : "logs"}. They are stored: search to see them.`;
    this.ui.dropped.hidden = false;
    this.showStatus();
  }

  /** The server's catch-up stopped at its cap: say so, link the rest, resume after it. */
  noteTruncated({ sent = 0, resume_from: resumeFrom, live_from: liveFrom, query }) {
    const skipped = liveFrom > resumeFrom ? ` up to id ${liveFrom}` : "";
    this.ui.truncatedText.textContent =
      `Only the first ${formatCount(sent)} logs stored while this view was away were ` +
      `replayed; the rest${skipped} are stored but not shown here.`;
    // Our own path only: the link never leaves this origin.
    const link = typeof query === "string" && query.startsWith("/logs?") ? query : "/logs";
    this.ui.truncatedLink.setAttribute("href", link);
    this.ui.truncated.hidden = false;
    // A reconnect resumes live, after the gap, not from the cap again.
    if (Number.isInteger(liveFrom)) this.lastId = Math.max(this.lastId ?? 0, liveFrom);
    this.showStatus();
  }

  reconnectLater() {
    this.socket = null;
    clearTimeout(this.watchdog);
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    const delay = Math.max(this.refused ? 5000 : 0, base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.setState("reconnecting", delay);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (!this.socket) this.connect();
  }

  armWatchdog() {
    clearTimeout(this.watchdog);
    const socket = this.socket;
    this.watchdog = setTimeout(() => socket?.close(), WATCHDOG_MS);
  }

  setState(state, delay = 0) {
    this.state = state;
    this.onState(state, delay);
  }

  showStatus() {
    const shown = this.ui.list.childElementCount;
    const parts = [
      `${formatCount(this.received)} received live`,
      `${formatCount(shown)} shown${shown >= MAX_ROWS ? ` (the newest ${MAX_ROWS})` : ""}`,
    ];
    if (this.dropped) parts.push(`${formatCount(this.dropped)} skipped by the server`);
    if (this.lastId !== null) parts.push(`last id ${this.lastId}`);
    this.ui.status.textContent = parts.join(" · ");
  }
}

/** Do the server's confirmed filters (Filters.as_dict) equal these form filters? */
function sameFilters(confirmed, filters) {
  let levels = filters.level ?? null;
  if (filters.min_level) levels = LEVELS.slice(LEVELS.indexOf(filters.min_level));
  if (levels) levels = LEVELS.filter((level) => levels.includes(level));
  const one = (values) => (values?.length === 1 ? values[0] : (values ?? undefined));
  return (
    JSON.stringify(confirmed.level ?? null) === JSON.stringify(levels) &&
    one(confirmed.source) === filters.source &&
    one(confirmed.application) === filters.application &&
    (confirmed.contains ?? undefined) === filters.contains
  );
}
