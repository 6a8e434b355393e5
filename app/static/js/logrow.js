// One log as a list row, and the detail dialog. All log fields are set as text.

import { el, formatTime, levelName } from "./dom.js";

const rows = new WeakMap(); // row element -> its log, for the detail view

/** The log a row shows. */
export const logOf = (row) => rows.get(row);

/** A focusable <li> for one log; click or Enter opens its detail. */
export function logRow(log, { withDate = false } = {}) {
  const level = levelName(log.level);
  const origin = [log.source, log.application].filter(Boolean).join(" · ");
  const row = el(
    "li",
    { class: `log lv-${level}`, attrs: { tabindex: "0", "data-id": log.id } },
    el("time", {
      text: formatTime(log.timestamp, withDate),
      attrs: { datetime: log.timestamp, title: log.timestamp },
    }),
    el("span", { class: "level", text: log.level }),
    el("span", { class: "origin", text: origin, attrs: { title: origin || null } }),
    el("span", { class: "message", text: log.message }),
  );
  rows.set(row, log);
  return row;
}

/** Open the detail of the log row a click or key landed on (list event delegation). */
export function wireDetail(list, dialog) {
  const open = (event) => {
    const row = event.target.closest("li.log");
    if (!row || !rows.has(row)) return;
    // Selecting text in a row is not a request for its detail.
    if (event.type === "click" && String(window.getSelection())) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    showDetail(dialog, rows.get(row), row);
  };
  list.addEventListener("click", open);
  list.addEventListener("keydown", open);
}

const FIELDS = [
  ["id", "Id"],
  ["timestamp", "Timestamp"],
  ["level", "Level"],
  ["source", "Source"],
  ["application", "Application"],
  ["stream_id", "Stream id"],
  ["created_at", "Stored at"],
];

/** Fill and open the dialog for `log`; focus goes back to `returnTo` when it closes. */
export function showDetail(dialog, log, returnTo) {
  const fields = dialog.querySelector("#detail-fields");
  fields.replaceChildren();
  for (const [key, label] of FIELDS) {
    if (log[key] === undefined) continue;
    const value = log[key] === null ? "—" : String(log[key]);
    const shown = key === "timestamp" ? `${value}  (${formatTime(value, true)} local)` : value;
    fields.append(el("dt", { text: label }), el("dd", { text: shown }));
  }
  dialog.querySelector("#detail-title").textContent = `Log ${log.id}`;
  dialog.querySelector("#detail-message").textContent = log.message;
  dialog.querySelector("#detail-meta").textContent = JSON.stringify(log.metadata ?? {}, null, 2);
  dialog.dataset.level = levelName(log.level);
  if (!dialog.open) dialog.showModal();
  dialog.addEventListener("close", () => returnTo?.isConnected && returnTo.focus(), { once: true });
}
