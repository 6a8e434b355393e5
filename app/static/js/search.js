// Search: GET /logs with the form's filters and the selected time range, cursor paging.

import { describeError, formatCount, say, signInIfNeeded } from "./dom.js";
import { readFilters, toParams } from "./filters.js";
import { logRow } from "./logrow.js";

const PAGE = 100;
const META_TOKEN = /^([^\s="]+)=(?:"([^"]*)"|(\S*))$/;

/** `key=value key2="two words"` -> [["meta.key", "value"], ...]; throws on a bad token. */
export function parseMeta(text) {
  const tokens = text.match(/[^\s=]+=(?:"[^"]*"|\S*)|\S+/g) || [];
  return tokens.map((token) => {
    const match = META_TOKEN.exec(token);
    if (!match) throw new Error(`Metadata filters are key=value pairs; "${token}" is not one.`);
    return [`meta.${match[1]}`, match[2] ?? match[3]];
  });
}

export class Search {
  /** `range()` gives {since, until}; `onSearch(params)` hears each new search's filters. */
  constructor(ui, { range, onSearch = () => {} }) {
    this.ui = ui;
    this.range = range;
    this.onSearch = onSearch;
    this.query = null; // the filters of the search on screen
    this.stale = false; // the range changed since it ran
    this.cursor = null;
    this.shown = 0;
    this.sequence = 0;
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    ui.more.addEventListener("click", () => this.page());
  }

  /** The filters of the form and the range as query parameters, or null if invalid. */
  filterParams() {
    const form = this.ui.form;
    const params = toParams(readFilters(form));
    const q = form.elements.q.value.trim();
    if (q) params.set("q", q);
    try {
      for (const [name, value] of parseMeta(form.elements.meta.value)) params.append(name, value);
    } catch (error) {
      say(this.ui.error, error.message);
      return null;
    }
    for (const [name, value] of Object.entries(this.range())) if (value) params.set(name, value);
    return params;
  }

  /** Start a new search from the form. */
  async run() {
    say(this.ui.error, "");
    const params = this.filterParams();
    if (!params) return;
    this.query = params;
    this.stale = false;
    this.cursor = null;
    this.shown = 0;
    this.ui.list.replaceChildren();
    this.onSearch(new URLSearchParams(params));
    await this.page();
  }

  /** Fetch the next page (the first when there is no cursor) and append it. */
  async page() {
    if (!this.query) return;
    const sequence = ++this.sequence;
    const params = new URLSearchParams(this.query);
    params.set("limit", PAGE);
    params.set("order", this.ui.form.elements.order.value);
    if (this.cursor) params.set("cursor", this.cursor);
    this.busy(true);
    try {
      const response = signInIfNeeded(await fetch(`/logs?${params}`, { headers: { Accept: "application/json" } }));
      const body = await response.json().catch(() => null);
      if (sequence !== this.sequence) return; // a newer search superseded this one
      if (response.status === 404) {
        say(this.ui.error, "Search needs the query API (GET /logs), which this server lacks.");
      } else if (!response.ok) {
        say(this.ui.error, describeError(response.status, body));
      } else {
        this.show(body);
      }
    } catch (error) {
      say(this.ui.error, `Could not reach the server: ${error.message}`);
    } finally {
      if (sequence === this.sequence) this.busy(false);
    }
  }

  show(body) {
    const fragment = document.createDocumentFragment();
    for (const log of body.logs) fragment.append(logRow(log, { withDate: true }));
    this.ui.list.append(fragment);
    this.shown += body.logs.length;
    this.cursor = body.next_cursor;
    this.ui.more.hidden = !this.cursor;
    const n = formatCount(this.shown);
    this.ui.summary.textContent = this.shown
      ? `${n} ${this.shown === 1 ? "log" : "logs"} shown${this.cursor ? "; more match" : ""}.`
      : "No logs match.";
  }

  busy(on) {
    this.ui.list.setAttribute("aria-busy", String(on));
    this.ui.more.disabled = on;
    this.ui.submit.disabled = on;
  }
}
