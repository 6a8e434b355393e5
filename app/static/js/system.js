// The system page: polls /system/status and redraws every tile, the rate chart and the
// tables. Dead letters carry log content (untrusted): text nodes only, as everywhere.

import { describeError, el, formatCount, formatTime, signInIfNeeded, svg } from "./dom.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
const HEIGHT = 150;
const PAD = { left: 46, right: 10, top: 10, bottom: 22 };
// Drawn in this order: stored over accepted (they coincide when the drain keeps up).
const SERIES = [
  ["ingest_accepted", "accepted"],
  ["drain_stored", "stored"],
  ["drain_dead_letters", "dead"],
];

/** "1.2 MB" for a byte count. */
export function formatBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit ? 1 : 0)} ${units[unit]}`;
}

/** "850 ms", "12 s", "3 min", "2 h" for a duration in seconds. */
export function formatAge(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function niceCeil(n) {
  if (n <= 5) return Math.max(1, Math.ceil(n));
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((v) => v >= n);
}

/** The rate chart: one polyline per series over the last buckets (logs per bucket). */
function drawRates(container, rates) {
  const width = Math.max(320, container.clientWidth);
  const points = rates.drain_stored.length;
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const top = niceCeil(Math.max(1, ...SERIES.flatMap(([name]) => rates[name].map((p) => p[1]))));
  const x = (i) => PAD.left + (points > 1 ? (i / (points - 1)) * plotW : 0);
  const y = (n) => PAD.top + plotH - (n / top) * plotH;
  const root = svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: "chart" });
  for (const value of [0, top / 2, top]) {
    root.append(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: PAD.left - 6, y: y(value) + 4, class: "tick y" });
    label.textContent = formatCount(Math.round(value));
    root.append(label);
  }
  const anchors = ["start", "middle", "end"];
  [0, Math.floor((points - 1) / 2), points - 1].forEach((i, n) => {
    const label = svg("text", { x: x(i), y: HEIGHT - 6, class: "tick x", "text-anchor": anchors[n] });
    label.textContent = formatTime(rates.drain_stored[i][0] * 1000).slice(0, 5);
    root.append(label);
  });
  for (const [name, cls] of SERIES) {
    const coords = rates[name].map((p, i) => `${x(i).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: coords, class: `line series-${cls}`, "data-series": name }));
  }
  container.replaceChildren(root);
  const stored = rates.drain_stored.reduce((sum, p) => sum + p[1], 0);
  container.setAttribute("aria-label", `${formatCount(stored)} logs stored in the last 10 minutes`);
}

function lastDrain(consumer) {
  const ms = consumer.inactive_ms ?? consumer.idle_ms;
  return `${formatAge(ms / 1000)} ago`;
}

function drawWorkers(status) {
  const { workers, consumers } = status;
  const nodeOf = {};
  for (const node of workers.nodes) {
    const drains = node.tasks["sluice.drain"];
    const label = drains === undefined ? node.name : `${node.name} (${formatCount(drains)} drains)`;
    for (const name of node.consumers) nodeOf[name] = label;
  }
  const rows = consumers.map((c) =>
    el(
      "tr",
      { attrs: { "data-consumer": c.name } },
      el("td", { class: "mono", text: c.name }),
      el("td", { text: nodeOf[c.name] || "–" }),
      el("td", { class: "num", text: formatCount(c.pending) }),
      el("td", { text: lastDrain(c) }),
    ),
  );
  for (const node of workers.nodes) {
    if (!node.consumers.length) {
      rows.push(el("tr", {}, el("td", { text: "(no drain yet)" }), el("td", { text: node.name }), el("td"), el("td")));
    }
  }
  $("workers").tBodies[0].replaceChildren(...rows);
  const up = workers.available ? `${workers.nodes.length} Celery worker(s) answering` : `Workers not inspected: ${workers.error}`;
  $("workers-note").textContent = up;
}

function drawPartitions(status) {
  const rows = status.partitions.map((p) =>
    el(
      "tr",
      {},
      el("td", { class: "mono", text: p.name }),
      el("td", { class: "num", text: p.rows_estimate === null ? "–" : formatCount(p.rows_estimate) }),
      el("td", { class: "num", text: formatBytes(p.bytes) }),
    ),
  );
  $("partitions").tBodies[0].replaceChildren(...rows);
  $("db-size").textContent = formatBytes(status.database_bytes);
  $("db-partitions").textContent = `${status.partitions.length} partitions`;
}

function drawDeadLetters(dead) {
  $("dead-total").textContent = formatCount(dead.total);
  const items = dead.newest.map((d) =>
    el(
      "li",
      { attrs: { "data-id": d.id } },
      el(
        "div",
        { class: "dead-head" },
        el("time", { text: formatTime(d.dead_at, true), attrs: { datetime: d.dead_at } }),
        el("span", { class: "dead-reason", text: d.reason }),
      ),
      el("pre", { class: "dead-body", text: d.body ?? "(no body)" }),
    ),
  );
  $("dead-list").replaceChildren(...items);
  $("dead-empty").hidden = items.length > 0;
}

function drawQueue(status) {
  const { queue, rates } = status;
  $("queue-length").textContent = formatCount(queue.length);
  $("queue-cap").textContent = `cap ${formatCount(queue.max_length)}`;
  $("queue-lag").textContent = formatCount(queue.lag);
  $("queue-pending").textContent = `${formatCount(queue.pending)} being drained`;
  $("queue-lag-age").textContent = formatAge(queue.lag_age_seconds);
  const minute = rates.drain_stored.slice(-6).reduce((sum, p) => sum + p[1], 0);
  $("rate-now").textContent = formatCount(minute);
  $("last-stored").textContent = rates.last_stored_at
    ? `last stored ${formatTime(rates.last_stored_at * 1000).slice(0, 8)}`
    : "nothing stored in 10 min";
}

function draw(status) {
  drawQueue(status);
  drawRates($("rate-chart"), status.rates);
  drawWorkers(status);
  drawPartitions(status);
  drawDeadLetters(status.dead_letters);
  const flower = $("flower-open");
  flower.hidden = !status.flower_url;
  if (status.flower_url) flower.href = status.flower_url;
}

let refreshes = 0;

async function refresh() {
  try {
    const response = signInIfNeeded(await fetch("/system/status", { headers: { Accept: "application/json" } }));
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(describeError(response.status, body));
    draw(body);
    refreshes += 1;
    document.documentElement.dataset.refreshes = String(refreshes); // tests follow it
    $("system-error").hidden = true;
    $("refresh").dataset.state = "live";
    $("refresh-text").textContent = `Updated ${formatTime(body.time * 1000).slice(0, 8)}`;
  } catch (error) {
    $("system-error").textContent = String(error.message || error);
    $("system-error").hidden = false;
    $("refresh").dataset.state = "reconnecting";
    $("refresh-text").textContent = "Retrying…";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
