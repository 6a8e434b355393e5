// On the main page: "Save this search" in the search view, and opening a saved search
// (`/?min_level=ERROR&q=card#search`, the `link` of /searches) in it. Kept apart from
// search.js: it only reads the form the search view already has.

import { api } from "./api.js";
import { el, LEVELS, say } from "./dom.js";

const $ = (id) => document.getElementById(id);
const TEXT_FIELDS = ["q", "source", "application", "contains"];

/** The search form's filters as a filter set (no time range: a reader brings their own). */
function currentFilters() {
  const params = window.sluice.search.filterParams();
  if (!params) return null;
  params.delete("since");
  params.delete("until");
  return params.toString();
}

function addSaveButton() {
  const form = $("search-form");
  const box = el(
    "div",
    { class: "save-search", attrs: { id: "save-search" } },
    el(
      "label",
      { class: "field" },
      el("span", { text: "Save as" }),
      el("input", { attrs: { name: "save-name", id: "save-name", maxlength: 200, autocomplete: "off" } }),
    ),
    el("button", { class: "button", text: "Save this search", attrs: { type: "button", id: "search-save" } }),
    el("span", { class: "hint", attrs: { id: "save-result", role: "status" } }),
  );
  form.querySelector(".row").append(box);
  $("search-save").addEventListener("click", async () => {
    say($("search-error"), "");
    const filters = currentFilters();
    if (filters === null) return;
    const name = $("save-name").value.trim();
    if (!name) return say($("search-error"), "Give the search a name to save it.");
    try {
      const saved = await api("POST", "/searches", { name, filters });
      $("save-result").replaceChildren(
        "Saved. ",
        el("a", { text: "Saved searches", attrs: { href: `/ui/searches#${saved.id}` } }),
      );
    } catch (error) {
      say($("search-error"), error.message);
    }
  });
}

/** Fill the search form from the page's query string, if it holds filters, and run it. */
function openFromUrl() {
  const params = new URLSearchParams(location.search);
  if (![...params.keys()].length || location.hash !== "#search") return;
  const form = $("search-form");
  for (const name of TEXT_FIELDS) form.elements[name].value = params.getAll(name).join(" ");
  form.elements.meta.value = [...params.entries()]
    .filter(([name]) => name.startsWith("meta."))
    .map(([name, value]) => `${name.slice(5)}=${/\s/.test(value) ? `"${value}"` : value}`)
    .join(" ");
  const min = params.get("min_level");
  const levels = params.getAll("level").flatMap((v) => v.split(","));
  const from = min ? LEVELS.indexOf(min.toUpperCase()) : 0;
  for (const chip of form.querySelectorAll("input[name=level]")) {
    chip.checked = levels.length ? levels.includes(chip.value) : LEVELS.indexOf(chip.value) >= from;
  }
  form.querySelector("select[name=min_level]").value = min && !levels.length ? min.toUpperCase() : "";
  window.sluice.search.run();
}

addSaveButton();
openFromUrl();
