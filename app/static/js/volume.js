// The time range picker and the volume strip (GET /logs/stats drawn by histogram.js).

import { describeError, el, formatCount, LEVELS, signInIfNeeded } from "./dom.js";
import { drawHistogram, summary } from "./histogram.js";

const SPAN_MS = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const pad = (n) => String(n).padStart(2, "0");

/** A Date as a datetime-local input value (local time, to the second). */
function localValue(date) {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export class RangePicker {
  /** `onChange()` runs when a preset is picked or a custom range applied. */
  constructor(form, onChange) {
    this.form = form;
    this.onChange = onChange;
    this.custom = form.querySelector("#custom-range");
    form.addEventListener("change", (event) => {
      if (event.target.name !== "range") return;
      if (event.target.value === "custom") this.openCustom();
      else {
        this.custom.hidden = true;
        onChange();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onChange();
    });
  }

  get preset() {
    return this.form.elements.range.value;
  }

  /** Show the from/to fields, prefilled with the window the last preset covered. */
  openCustom() {
    const { from, to } = this.form.elements;
    if (!from.value) {
      const now = new Date();
      to.value = localValue(now);
      from.value = localValue(new Date(now.getTime() - (SPAN_MS[this.last] || 3600e3)));
    }
    this.custom.hidden = false;
    from.focus();
  }

  /** Pick a custom range [since, until) and apply it. */
  setCustom(since, until) {
    this.form.elements.range.value = "custom";
    this.form.elements.from.value = localValue(since);
    this.form.elements.to.value = localValue(until);
    this.custom.hidden = false;
    this.onChange();
  }

  /** {since, until} as the query API takes them ("15m" or ISO 8601 in UTC). */
  params() {
    if (this.preset !== "custom") {
      this.last = this.preset;
      return { since: this.preset };
    }
    const out = {};
    for (const [field, name] of [["from", "since"], ["to", "until"]]) {
      const date = new Date(this.form.elements[field].value);
      if (!Number.isNaN(date.getTime())) out[name] = date.toISOString();
    }
    return out;
  }
}

export class Volume {
  constructor(ui, { onPick }) {
    this.ui = ui; // {chart, summary, legend}
    this.onPick = onPick;
    this.stats = null;
    this.sequence = 0;
    let timer = null;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.redraw(), 150);
    });
  }

  /** Fetch /logs/stats for these filter and range parameters and draw it. */
  async load(params) {
    const sequence = ++this.sequence;
    this.ui.chart.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = signInIfNeeded(await fetch(`/logs/stats?${params}`, { headers: { Accept: "application/json" } }));
      body = await response.json().catch(() => null);
    } catch (error) {
      response = { ok: false, status: 0 };
      body = { message: `Could not reach the server: ${error.message}` };
    }
    if (sequence !== this.sequence) return;
    this.ui.chart.setAttribute("aria-busy", "false");
    if (response.status === 404) return this.message("Volume needs the query API (GET /logs/stats).");
    if (!response.ok) return this.message(describeError(response.status, body));
    this.stats = body;
    this.redraw();
  }

  redraw() {
    if (!this.stats) return;
    drawHistogram(this.ui.chart, this.stats, { onPick: this.onPick });
    this.ui.summary.textContent = summary(this.stats);
    for (const level of LEVELS) {
      const node = this.ui.legend.querySelector(`[data-level-count="${level}"]`);
      if (node) node.textContent = formatCount(this.stats.levels?.[level] ?? 0);
    }
  }

  message(text) {
    this.stats = null;
    this.ui.summary.textContent = "";
    this.ui.chart.replaceChildren(el("p", { class: "placeholder", text }));
  }
}
