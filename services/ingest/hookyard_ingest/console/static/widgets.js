// The tenant pages' own widgets, on top of dom.js: the delivery chart, a progress bar, payloads and
// headers shown as text, attempts, polling that stops when its page is gone, and an API failure shown
// beside the form field it names. Like dom.js, everything is built node by node: nothing is parsed as HTML.

import { api } from "./api.js";
import { failure, h, moment, s, statusBadge, table } from "./dom.js";

// This module's sheet, linked once by whichever page loads first (CSP: style-src 'self').
if (!document.querySelector("link[data-pages-css]")) {
  document.head.append(h("link", { rel: "stylesheet", href: new URL("./pages.css", import.meta.url).href, "data-pages-css": "" }));
}

/** A query string from `params`, leaving out empty values: `?a=1&b=x` or "". */
export function query(params) {
  const kept = Object.entries(params).filter(([, value]) => value !== undefined && value !== null && value !== "");
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}

/** A `datetime-local` control's value as ISO 8601 in UTC (the API wants a zone); other text as typed. */
export function isoInstant(text) {
  if (!text) return "";
  const parsed = new Date(text);
  return Number.isNaN(parsed.getTime()) ? text : parsed.toISOString();
}

/** A moment (ISO text or Date) as a `datetime-local` value in the browser's zone; "" when there is none. */
export function localInput(when) {
  if (!when) return "";
  const parsed = new Date(when);
  if (Number.isNaN(parsed.getTime())) return "";
  return new Date(parsed.getTime() - parsed.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** Every page of a list (`/v1/...` answering `{data, next_cursor}`), up to `most` items. */
export async function everything(path, params = {}, most = 500) {
  const found = [];
  let cursor = null;
  do {
    const page = await api("GET", path + query({ ...params, limit: 100, cursor }));
    found.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && found.length < most);
  return found;
}

/** Run `step` every `ms` until it answers true or `root` has left the page (the user moved on). */
export function poll(root, step, ms = 1000) {
  const tick = async () => {
    if (!root.isConnected) return;
    let done = false;
    try {
      done = await step();
    } catch {
      done = false; // a failed look is tried again on the next tick
    }
    if (!done && root.isConnected) setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

/** A value pretty-printed as JSON, as text: a payload shows exactly what it holds and never runs. */
export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, JSON.stringify(value, null, 2));
}

/** A body as received: pretty JSON when it parses, else the text itself. */
export function bodyBlock(text, label) {
  if (text === null || text === undefined) return h("p", { class: "empty" }, "(no body)");
  try {
    return jsonBlock(JSON.parse(text), label);
  } catch {
    return h("pre", { class: "json", tabindex: "0", "aria-label": label }, text);
  }
}

/** Header names whose values are credentials: never shown, whatever the server recorded. */
const CREDENTIALS = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token)$|token|secret|password/i;

/** Headers as a table, credentials masked; `headers` an object or a list of [name, value] pairs. */
export function headersTable(headers, caption) {
  const rows = Array.isArray(headers) ? headers : Object.entries(headers || {});
  return table(
    rows,
    [
      { label: "Header", value: ([name]) => h("code", {}, name) },
      { label: "Value", value: ([name, value]) => (CREDENTIALS.test(name) ? h("span", { class: "masked" }, "•••• (masked)") : h("code", {}, value)) },
    ],
    { caption, empty: "No headers." },
  );
}

/** An endpoint's state in words: active, failing since, paused until, or disabled and why. */
export function endpointHealth(endpoint) {
  const health = endpoint.health || {};
  if (!endpoint.active) {
    return h("span", {}, statusBadge("disabled"), " ", endpoint.disabled_reason ? `(${endpoint.disabled_reason})` : "(by its tenant)");
  }
  if (health.paused_until && new Date(health.paused_until) > new Date()) {
    return h("span", {}, statusBadge("paused"), " until ", moment(health.paused_until));
  }
  if (health.failing_since) return h("span", {}, statusBadge("failing"), " since ", moment(health.failing_since));
  return statusBadge("active");
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 1000) / 10}%`;
}

/** Overall success rate and mean latency of a stats series (GET /v1/endpoints/{id}/stats). */
export function summary(series) {
  const attempts = series.buckets.reduce((sum, b) => sum + b.attempts, 0);
  const successful = series.buckets.reduce((sum, b) => sum + b.successful, 0);
  const timed = series.buckets.filter((b) => b.avg_latency_ms !== null);
  const latency = timed.length ? timed.reduce((sum, b) => sum + b.avg_latency_ms * b.attempts, 0) / timed.reduce((sum, b) => sum + b.attempts, 0) : null;
  return { attempts, successRate: attempts ? successful / attempts : null, latency };
}

/** Success rate (bars: green share succeeded, red failed) and latency (line) per slice, as inline SVG. */
export function deliveryChart(series, { width = 192, height = 40 } = {}) {
  const { attempts, successRate, latency } = summary(series);
  const label = attempts
    ? `Last 24 h: ${attempts} attempts, ${percent(successRate)} successful, ${Math.round(latency ?? 0)} ms on average`
    : "Last 24 h: no attempts";
  const step = width / series.buckets.length;
  const slowest = Math.max(1, ...series.buckets.map((b) => b.avg_latency_ms ?? 0));
  const bars = series.buckets.flatMap((b, i) => {
    if (!b.attempts) return [s("rect", { x: i * step + 1, y: height - 2, width: step - 2, height: 2, class: "chart-empty" })];
    const ok = (b.successful / b.attempts) * (height - 4);
    return [
      s("rect", { x: i * step + 1, y: 2, width: step - 2, height: height - 4 - ok, class: "chart-failed" }),
      s("rect", { x: i * step + 1, y: height - 2 - ok, width: step - 2, height: ok, class: "chart-ok" }),
    ];
  });
  const line = series.buckets
    .map((b, i) => (b.avg_latency_ms === null ? null : `${(i * step + step / 2).toFixed(1)},${(height - 2 - (b.avg_latency_ms / slowest) * (height - 4)).toFixed(1)}`))
    .filter(Boolean)
    .join(" ");
  return h(
    "figure",
    { class: "delivery-chart" },
    s(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
      s("title", {}, label),
      bars,
      line ? s("polyline", { points: line, class: "chart-latency", fill: "none" }) : null,
    ),
    h("figcaption", {}, attempts ? `${percent(successRate)} ok · ${Math.round(latency ?? 0)} ms` : "no attempts in 24 h"),
  );
}

/** A labelled <progress> and the words beside it; `update(done, total, words)` moves it. */
export function progressBar(labelText) {
  const id = `progress-${Math.random().toString(36).slice(2)}`;
  const bar = h("progress", { id, max: 1, value: 0 });
  const words = h("span", { class: "progress-words", "aria-live": "polite" });
  const element = h("div", { class: "progress" }, h("label", { for: id }, labelText), bar, words);
  return {
    element,
    update(done, total, text) {
      bar.max = Math.max(total, 1);
      bar.value = Math.min(done, bar.max);
      words.textContent = text;
    },
  };
}

/** One delivery attempt: status, latency, request headers (credentials masked) and what was answered. */
export function attemptCard(attempt) {
  return h(
    "article",
    { class: `attempt attempt-${attempt.outcome}`, "data-attempt": attempt.id },
    h(
      "h3",
      {},
      `Attempt ${attempt.attempt} `,
      statusBadge(attempt.outcome),
      ` ${attempt.status ?? "no answer"}`,
      attempt.latency_ms !== null ? ` · ${Math.round(attempt.latency_ms)} ms` : "",
      " · ",
      moment(attempt.at),
    ),
    h(
      "dl",
      {},
      h("dt", {}, "Endpoint"),
      h("dd", {}, h("a", { href: `#/endpoints/${encodeURIComponent(attempt.endpoint_id)}` }, attempt.endpoint_id)),
      h("dt", {}, "URL"),
      h("dd", {}, h("code", {}, attempt.url)),
      attempt.reason ? [h("dt", {}, "Reason"), h("dd", {}, attempt.reason)] : null,
    ),
    h(
      "details",
      {},
      h("summary", {}, "Request headers and response body"),
      headersTable(attempt.request_headers, "Request headers"),
      h("h4", {}, "Response body"),
      bodyBlock(attempt.response_body, "Response body"),
    ),
  );
}

/** Show an API failure: beside the field it names (and each of `problems`), and as a summary in `where`. */
export function showFailure(form, where, error) {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const kept = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && !id.endsWith("-error"));
    if (kept.length) input.setAttribute("aria-describedby", kept.join(" "));
    else input.removeAttribute("aria-describedby");
  }
  where.replaceChildren(failure(error));
  const body = error?.body?.error;
  const problems = body?.problems || (body?.field ? [{ field: body.field, problem: body.message }] : []);
  for (const { field, problem } of problems) {
    const input = fieldFor(form, field);
    if (!input) continue;
    const id = `${input.id}-error`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
    (input.closest(".field") || input).append(h("p", { class: "field-error", id }, problem));
  }
}

/** The control a dotted API path belongs to: the longest prefix that names one (`retry_policy.max_retries.0`). */
function fieldFor(form, path) {
  const parts = String(path).split(".");
  for (let n = parts.length; n > 0; n -= 1) {
    const found = form.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
    if (found) return found;
  }
  return null;
}
