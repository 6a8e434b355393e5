// The volume histogram: /logs/stats buckets as stacked SVG bars, one colour per level.

import { el, formatCount, formatTick, formatTime, svg } from "./dom.js";

const STEP_MS = { "1m": 60e3, "5m": 300e3, "1h": 3600e3, "1d": 86400e3 };
const STEP_NAME = { "1m": "minute", "5m": "5 minutes", "1h": "hour", "1d": "day" };
// Most severe at the bottom, where a burst of errors is easiest to see.
const STACK = ["CRITICAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
const HEIGHT = 132;
const PAD = { left: 46, right: 10, top: 10, bottom: 22 };

/** A round number >= n for the top of the axis (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k). */
function niceCeil(n) {
  if (n <= 5) return Math.max(1, Math.ceil(n));
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((v) => v >= n);
}

/** Draw `stats` into `container`; `onPick(since, until)` gets a clicked bucket's range. */
export function drawHistogram(container, stats, { onPick } = {}) {
  const width = Math.max(320, container.clientWidth);
  const buckets = stats.buckets || [];
  const step = STEP_MS[stats.interval] || 60e3;
  if (!buckets.length || !stats.total) {
    container.replaceChildren(el("p", { class: "placeholder", text: "No logs in this range." }));
    return;
  }
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const top = niceCeil(Math.max(...buckets.map((b) => b.total)));
  const barW = plotW / buckets.length;
  const gap = barW > 5 ? 1 : 0;
  const y = (n) => PAD.top + plotH - (n / top) * plotH;

  const root = svg("svg", {
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    class: "chart",
    role: "img",
  });
  root.setAttribute("aria-label", summary(stats));
  drawAxes(root, { top, width, y, buckets, barW, step });
  buckets.forEach((bucket, i) => {
    root.append(drawBucket(bucket, { x: PAD.left + i * barW, barW, gap, y, step, onPick }));
  });
  container.replaceChildren(root);
}

function drawAxes(root, { top, width, y, buckets, barW, step }) {
  for (const value of [0, top / 2, top]) {
    const at = y(value);
    root.append(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: at, y2: at, class: "grid" }));
    const label = svg("text", { x: PAD.left - 6, y: at + 4, class: "tick y" });
    label.textContent = formatCount(Math.round(value));
    root.append(label);
  }
  const span = buckets.length * step;
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(2, Math.floor(width / 110))));
  for (let i = 0; i < buckets.length; i += every) {
    const x = PAD.left + i * barW;
    const label = svg("text", { x, y: HEIGHT - 6, class: "tick x" });
    label.textContent = formatTick(new Date(buckets[i].time), span);
    root.append(label, svg("line", { x1: x, x2: x, y1: y(0), y2: y(0) + 4, class: "axis" }));
  }
}

function drawBucket(bucket, { x, barW, gap, y, step, onPick }) {
  const group = svg("g", { class: "bucket" });
  const start = new Date(bucket.time);
  const end = new Date(start.getTime() + step);
  const title = svg("title");
  const counts = STACK.filter((level) => bucket.counts?.[level]).map(
    (level) => `${level} ${formatCount(bucket.counts[level])}`,
  );
  title.textContent =
    `${formatTime(start.toISOString(), true).slice(0, 16)} – ${formatTime(end.toISOString()).slice(0, 5)}` +
    `\n${formatCount(bucket.total)} logs${counts.length ? `\n${counts.join("\n")}` : ""}`;
  group.append(title);
  // A full-height target, so small bars are as easy to hover and click as tall ones.
  group.append(svg("rect", { x, y: PAD.top, width: barW, height: y(0) - PAD.top, class: "hit" }));
  let base = 0;
  for (const level of STACK) {
    const n = bucket.counts?.[level] || 0;
    if (!n) continue;
    const top = y(base + n);
    const height = Math.max(1, y(base) - top);
    group.append(
      svg("rect", { x: x + gap / 2, y: top, width: Math.max(1, barW - gap), height, class: `bar lv-${level}` }),
    );
    base += n;
  }
  if (onPick && bucket.total) {
    group.classList.add("pickable");
    group.addEventListener("click", () => onPick(start, end));
  }
  return group;
}

/** One sentence describing the chart, for screen readers and the summary line. */
export function summary(stats) {
  const peak = Math.max(0, ...(stats.buckets || []).map((b) => b.total));
  const per = STEP_NAME[stats.interval] || stats.interval;
  return `${formatCount(stats.total || 0)} logs; peak ${formatCount(peak)} per ${per}.`;
}
