// Wires the page: tabs, the time range and volume strip, the live tail and search.

import { debounce } from "./dom.js";
import { readFilters, toParams, wireLevels } from "./filters.js";
import { LiveTail } from "./live.js";
import { wireDetail } from "./logrow.js";
import { Search } from "./search.js";
import { RangePicker, Volume } from "./volume.js";

const $ = (id) => document.getElementById(id);
const VOLUME_REFRESH_MS = 15_000; // while the live tail is on screen

const STATE_TEXT = {
  connecting: () => "Connecting…",
  live: () => "Live",
  paused: () => "Paused",
  reconnecting: (delay) => `Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`,
};

function showConnection(state, delay) {
  $("connection").dataset.state = state;
  $("connection-text").textContent = STATE_TEXT[state](delay);
  document.documentElement.dataset.live = state; // tests and styles can follow it
}

/** ARIA tabs: click or arrow keys switch; the choice is kept in the URL's #fragment. */
function wireTabs(onSwitch) {
  const tabs = [$("tab-live"), $("tab-search")];
  const select = (tab, focus = false) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", tab.id === "tab-search" ? "#search" : "#live");
    onSwitch(tab.id === "tab-search" ? "search" : "live");
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      select(next, true);
    });
  }
  return { select: (name) => select(name === "search" ? tabs[1] : tabs[0]) };
}

// Element ids of each part of the page, by the names its module uses.
const LIVE_IDS = {
  form: "live-filters",
  list: "live-list",
  scroller: "live-scroller",
  empty: "live-empty",
  pause: "live-pause",
  clear: "live-clear",
  paused: "live-paused",
  pausedText: "live-paused-text",
  resume: "live-resume",
  dropped: "live-dropped",
  droppedText: "live-dropped-text",
  droppedDismiss: "live-dropped-dismiss",
  truncated: "live-truncated",
  truncatedText: "live-truncated-text",
  truncatedLink: "live-truncated-link",
  truncatedDismiss: "live-truncated-dismiss",
  error: "live-error",
  jump: "live-jump",
  jumpText: "live-jump-text",
  status: "live-status",
};
const SEARCH_IDS = {
  form: "search-form",
  list: "search-list",
  more: "search-more",
  error: "search-error",
  summary: "search-summary",
  submit: "search-submit",
};
const elements = (ids) => Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, $(id)]));

/** Live filters apply as they are typed (debounced) and as soon as a level is picked. */
function wireLiveFilters(form, live) {
  const apply = () => live.setFilters();
  wireLevels(form.querySelector("[data-levels]"), apply);
  form.addEventListener("input", debounce((e) => e.target.type !== "checkbox" && apply(), 300));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
}

function main() {
  let view = "live";
  const range = new RangePicker($("range"), () => onRange());
  const volume = new Volume(
    { chart: $("histogram"), summary: $("volume-summary"), legend: $("legend") },
    { onPick: (since, until) => range.setCustom(since, until) },
  );
  const liveVolume = () => {
    const params = toParams(readFilters($("live-filters")));
    for (const [name, value] of Object.entries(range.params())) params.set(name, value);
    volume.load(params);
  };
  const live = new LiveTail(elements(LIVE_IDS), {
    onState: showConnection,
    onFilters: debounce(() => view === "live" && liveVolume(), 300),
  });
  const search = new Search(elements(SEARCH_IDS), {
    range: () => range.params(),
    onSearch: (params) => volume.load(params),
  });
  const tabs = wireTabs((name) => {
    view = name;
    if (name === "live") liveVolume();
    else if (!search.query || search.stale) search.run();
    else volume.load(search.query);
  });
  function onRange() {
    if (view === "search") return search.run();
    search.stale = true; // the next visit to Search runs it again for this range
    if (range.preset === "custom") tabs.select("search"); // a picked window is for reading
    else liveVolume();
  }

  wireLiveFilters($("live-filters"), live);
  wireLevels($("search-form").querySelector("[data-levels]"), () => {});
  wireDetail($("live-list"), $("detail"));
  wireDetail($("search-list"), $("detail"));
  setInterval(() => {
    const relative = range.preset !== "custom";
    if (view === "live" && relative && !document.hidden && !live.paused) liveVolume();
  }, VOLUME_REFRESH_MS);

  window.sluice = { live, search, volume, range }; // for the console and the browser tests
  tabs.select(location.hash === "#search" ? "search" : "live");
  live.start();
}

main();
