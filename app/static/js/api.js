// JSON calls to the API for the saved-search and alert pages; errors in the one shape.

import { describeError } from "./dom.js";

/** fetch() a JSON answer; throws an Error with the server's message on a non-2xx. */
export async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new Error(describeError(response.status, parsed));
  return parsed;
}

/** The filter set of a saved search as readable text: `min_level=ERROR q=card`. */
export function describeFilters(filters) {
  const parts = [];
  for (const [name, values] of Object.entries(filters || {})) {
    for (const value of values) parts.push(`${name}=${value}`);
  }
  return parts.join(" ") || "everything";
}
