// The alerts page: create one (on a saved search or its own filters), list them with their
// state, show one's history, delete one.

import { api, describeFilters } from "./api.js";
import { el, formatTime, say } from "./dom.js";

const $ = (id) => document.getElementById(id);

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function describeEvent(event) {
  const d = event.detail || {};
  if (event.kind === "delivery") {
    const answer = d.ok ? `HTTP ${d.status}` : d.error || `HTTP ${d.status}`;
    return `delivery attempt ${d.attempt}: ${d.ok ? "delivered" : "failed"} (${answer})`;
  }
  if (event.kind === "error") return `could not be evaluated: ${d.error}`;
  const silenced = d.notified === false ? ` (not sent: ${d.reason})` : "";
  return `${event.kind}, ${event.count} matching${silenced}`;
}

async function showHistory(alert) {
  const { events } = await api("GET", `/alerts/${alert.id}/events`);
  $("history-title").textContent = `History of ${alert.name}`;
  $("history-list").replaceChildren(
    ...events.map((e) =>
      el("li", { attrs: { "data-kind": e.kind }, text: `${formatTime(e.at, true)} ${describeEvent(e)}` }),
    ),
  );
  if (!events.length) $("history-list").append(el("li", { text: "Nothing yet." }));
  $("alert-history").hidden = false;
}

function row(alert, reload) {
  const history = el("button", { text: "History", class: "button", attrs: { type: "button" } });
  history.addEventListener("click", () => showHistory(alert).catch((e) => say($("page-error"), e.message)));
  const remove = el("button", { text: "Delete", class: "button quiet", attrs: { type: "button" } });
  remove.addEventListener("click", async () => {
    try {
      await api("DELETE", `/alerts/${alert.id}`);
      $("alert-history").hidden = true;
      reload();
    } catch (error) {
      say($("page-error"), error.message);
    }
  });
  const snoozed = alert.snooze_until && new Date(alert.snooze_until) > new Date();
  const rule =
    `≥ ${alert.threshold} in ${alert.window}` +
    (alert.repeat ? `, remind every ${alert.repeat}` : "") +
    ` · ${describeFilters(alert.filters)}`;
  return el(
    "tr",
    { attrs: { "data-id": alert.id } },
    el("td", { class: "name" }, el("a", { text: alert.name, attrs: { href: alert.link } })),
    el("td", {}, el("span", { class: `state ${alert.state}`, text: alert.state + (snoozed ? " (snoozed)" : "") })),
    el("td", { class: "query", text: rule }),
    el("td", { class: "count", text: alert.last_count ?? "–" }),
    el("td", { text: hostOf(alert.webhook) }),
    el("td", { class: "actions" }, history, remove),
  );
}

async function loadSearches() {
  const { searches } = await api("GET", "/searches");
  const select = $("alert-search");
  const chosen = select.value;
  select.replaceChildren(
    el("option", { text: "Filters below", attrs: { value: "" } }),
    ...searches.map((s) => el("option", { text: s.name, attrs: { value: s.id } })),
  );
  select.value = chosen;
}

async function load() {
  const list = $("alerts-list");
  list.setAttribute("aria-busy", "true");
  try {
    const { alerts } = await api("GET", "/alerts");
    list.replaceChildren(...alerts.map((a) => row(a, load)));
    $("alerts-empty").hidden = alerts.length > 0;
  } catch (error) {
    say($("page-error"), error.message);
  }
  list.setAttribute("aria-busy", "false");
}

$("alert-new").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target.elements;
  say($("page-error"), "");
  const body = {
    name: form.name.value,
    search: form.search.value ? Number(form.search.value) : form.filters.value.trim(),
    threshold: Number(form.threshold.value),
    window: form.window.value.trim(),
    webhook: form.webhook.value.trim(),
  };
  if (form.repeat.value.trim()) body.repeat = form.repeat.value.trim();
  try {
    await api("POST", "/alerts", body);
    event.target.reset();
    await load();
  } catch (error) {
    say($("page-error"), error.message);
  }
});

loadSearches().catch((e) => say($("page-error"), e.message));
load();
setInterval(() => !document.hidden && load(), 15_000); // states change on their own
