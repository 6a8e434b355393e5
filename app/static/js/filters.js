// The filter controls both views share: levels (chips, or a minimum level) and text fields.

import { LEVELS } from "./dom.js";

/** Wire a levels fieldset: the select picks "X and up", the chips pick any set. */
export function wireLevels(fieldset, onChange) {
  const select = fieldset.querySelector("select[name=min_level]");
  const chips = [...fieldset.querySelectorAll("input[name=level]")];
  select.addEventListener("change", () => {
    const from = select.value ? LEVELS.indexOf(select.value) : 0;
    for (const chip of chips) chip.checked = LEVELS.indexOf(chip.value) >= from;
    onChange();
  });
  for (const chip of chips) {
    chip.addEventListener("change", () => {
      if (!chips.some((c) => c.checked)) chip.checked = true; // never "no level at all"
      select.value = minimumOf(chips) || "";
      onChange();
    });
  }
}

/** The level a checked set spells as "X and up", if it does (and is not everything). */
function minimumOf(chips) {
  const checked = chips.filter((c) => c.checked).map((c) => LEVELS.indexOf(c.value));
  const lowest = Math.min(...checked);
  const contiguous = checked.length === LEVELS.length - lowest;
  return contiguous && lowest > 0 ? LEVELS[lowest] : null;
}

/** The level part of a form's filters: {} (all), {min_level} or {level: [...]}. */
export function readLevels(form) {
  const checked = [...form.querySelectorAll("input[name=level]:checked")].map((c) => c.value);
  if (checked.length === LEVELS.length) return {};
  const minimum = form.querySelector("select[name=min_level]").value;
  return minimum ? { min_level: minimum } : { level: checked };
}

/** Levels, source, application and contains from a form; empty ones left out. */
export function readFilters(form) {
  const out = readLevels(form);
  for (const name of ["source", "application", "contains"]) {
    const value = form.elements[name]?.value.trim();
    if (value) out[name] = value;
  }
  return out;
}

/** Filters as query parameters (levels comma-joined, as both APIs accept). */
export function toParams(filters, params = new URLSearchParams()) {
  for (const [name, value] of Object.entries(filters)) {
    params.set(name, Array.isArray(value) ? value.join(",") : value);
  }
  return params;
}

/** The server's filter rule, in the browser (app/pipeline/filters.py Filters.match), for the
 * moment between a filter change and the server's confirmation; tests/test_filter_rule.py
 * runs one table of cases through both. */
export function matches(filters, log) {
  if (filters.min_level && LEVELS.indexOf(log.level) < LEVELS.indexOf(filters.min_level)) {
    return false;
  }
  if (filters.level && !filters.level.includes(log.level)) return false;
  if (filters.source && log.source !== filters.source) return false;
  if (filters.application && log.application !== filters.application) return false;
  const needle = filters.contains?.toLowerCase();
  return !needle || String(log.message ?? "").toLowerCase().includes(needle);
}
