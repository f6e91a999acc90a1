// Building the page: elements from createElement, attributes from setAttribute, text from text
// nodes. Nothing here (or anywhere in the console) parses a string as HTML, so whatever a tenant,
// a provider or a receiver sent is shown as text: escaped by construction, not by remembering to.

const SVG = "http://www.w3.org/2000/svg";
/** Attributes whose value is a URL: only http(s), relative or same-page, never `javascript:`. */
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href"]);
const SAFE_URL = /^(https?:|mailto:|#|\/|\.|[^:]*$)/i;

let ids = 0;

/** A fresh id for pairing a label with its control. */
export function uid(prefix = "c") {
  ids += 1;
  return `${prefix}-${ids}`;
}

function setAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (URL_ATTRIBUTES.has(name) && !SAFE_URL.test(String(value).trim())) {
      element.setAttribute(name, "#");
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function appendChildren(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** `h("a", {href: "#/x", onclick: fn}, "text", node, [more])`: an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  appendChildren(element, children);
  return element;
}

/** `h` for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  setAttributes(element, attrs);
  appendChildren(element, children);
  return element;
}

/** Empty a node. */
export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A table: `columns` are `{label, value: row => text or node}`; `empty` is said when there are no rows. */
export function table(rows, columns, { caption, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((column) => h("td", {}, column.value(row)))))),
    ),
  );
}

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["min", 60],
  ["s", 1],
];

/** "5 min ago", "in 2 h", "never": a time relative to now (an ISO string, a Date or null). */
export function timeAgo(when, now = Date.now()) {
  if (when === null || when === undefined) return "never";
  const seconds = Math.round((now - new Date(when).getTime()) / 1000);
  if (Number.isNaN(seconds)) return "unknown";
  const size = Math.abs(seconds);
  if (size < 1) return "just now";
  const [unit, length] = UNITS.find(([, step]) => size >= step);
  const amount = `${Math.floor(size / length)} ${unit}`;
  return seconds >= 0 ? `${amount} ago` : `in ${amount}`;
}

/** A <time> showing `timeAgo`, the exact moment in its title. */
export function moment(when) {
  if (!when) return h("span", {}, "never");
  return h("time", { datetime: String(when), title: String(when) }, timeAgo(when));
}

/** A small coloured label for a state ("up", "failing", "delivered", ...). */
export function statusBadge(status) {
  const text = String(status ?? "unknown");
  return h("span", { class: `badge badge-${text.toLowerCase().replace(/[^a-z0-9]+/g, "-")}` }, text);
}

/** A line chart of numbers (null: no data there), as inline SVG; `label` is what a screen reader hears. */
export function sparkline(points, { label = "trend", width = 120, height = 28 } = {}) {
  const known = points.filter((point) => typeof point === "number");
  const top = Math.max(...known, 1);
  const step = points.length > 1 ? width / (points.length - 1) : width;
  const coordinates = points
    .map((point, index) => (typeof point === "number" ? `${(index * step).toFixed(1)},${(height - 2 - (point / top) * (height - 4)).toFixed(1)}` : null))
    .filter(Boolean)
    .join(" ");
  return s(
    "svg",
    { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
    s("title", {}, label),
    s("polyline", { points: coordinates, fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
  );
}

/** A button that copies `text` to the clipboard and says so. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "copy", "aria-label": `${label}: ${text}` }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

/** A form field: `label` paired with its control by `for`/`id`, and a hint it is described by. */
export function field(label, input, hint) {
  if (!input.id) input.id = uid("field");
  const parts = [h("label", { for: input.id }, label), input];
  if (hint) {
    const hintId = `${input.id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** What went wrong, for the user: an API failure's message, code and field, or an error's message. */
export function failure(error) {
  const body = error?.body?.error;
  return h(
    "div",
    { class: "failure", role: "alert" },
    h("strong", {}, body?.message || error?.message || String(error)),
    body?.code ? h("span", { class: "code" }, ` (${body.code}${body.field ? `: ${body.field}` : ""})`) : null,
  );
}

/** A button with a click handler; `attrs` as for `h`. */
export function button(label, onClick, attrs = {}) {
  return h("button", { type: "button", ...attrs, onclick: onClick }, label);
}
