// Small DOM and formatting helpers. Log content is untrusted: everything here builds
// elements and sets text with textContent, never HTML from strings.

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"];

/** Create an element: el("span", {class: "x", text: "y", attrs: {title: "z"}}, ...children). */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  for (const [name, value] of Object.entries(options.attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** An SVG element with attributes (numbers and our own class names only, never log data). */
export function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Local "HH:MM:SS.mmm" (and "YYYY-MM-DD " before it when withDate). */
export function formatTime(iso, withDate = false) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? "");
  const time =
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`;
  if (!withDate) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** A short local label for an axis tick. */
export function formatTick(date, spanMs) {
  if (spanMs > 2 * 86400e3) return `${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export const formatCount = (n) => Number(n).toLocaleString();

/** A known level name, for use in a class name; anything else becomes "UNKNOWN". */
export const levelName = (level) => (LEVELS.includes(level) ? level : "UNKNOWN");

/** Show or hide an element and set its text in one step. */
export function say(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** Run fn at most once per `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** An API error body ({error, message, fields}) as one readable line. */
export function describeError(status, body) {
  if (!body || typeof body !== "object") return `The server answered ${status}.`;
  const parts = [body.message || body.error || `The server answered ${status}.`];
  for (const [field, problems] of Object.entries(body.fields || {})) {
    parts.push(`${field}: ${[].concat(problems).join(" ")}`);
  }
  return parts.join(" ");
}

/** A 401 means the session ended: go to the sign-in page, and come back here after it. */
export function signInIfNeeded(response) {
  if (response.status === 401) {
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  return response;
}
