// The saved searches page: list them (open one in the search view, delete it), save one.

import { api, describeFilters } from "./api.js";
import { el, say } from "./dom.js";

const $ = (id) => document.getElementById(id);

function row(search, reload) {
  const open = el("a", { text: "Open", class: "button", attrs: { href: search.link } });
  const remove = el("button", { text: "Delete", class: "button quiet", attrs: { type: "button" } });
  remove.addEventListener("click", async () => {
    try {
      await api("DELETE", `/searches/${search.id}`);
      reload();
    } catch (error) {
      say($("page-error"), error.message);
    }
  });
  return el(
    "tr",
    { attrs: { "data-id": search.id } },
    el("td", { class: "name", text: search.name }),
    el("td", { class: "query", text: describeFilters(search.filters) }),
    el("td", { class: "actions" }, open, remove),
  );
}

async function load() {
  const list = $("searches-list");
  list.setAttribute("aria-busy", "true");
  try {
    const { searches } = await api("GET", "/searches");
    list.replaceChildren(...searches.map((s) => row(s, load)));
    $("searches-empty").hidden = searches.length > 0;
  } catch (error) {
    say($("page-error"), error.message);
  }
  list.setAttribute("aria-busy", "false");
}

$("search-new").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  say($("page-error"), "");
  try {
    await api("POST", "/searches", {
      name: form.elements.name.value,
      filters: form.elements.filters.value.trim(),
    });
    form.reset();
    await load();
  } catch (error) {
    say($("page-error"), error.message);
  }
});

load();
