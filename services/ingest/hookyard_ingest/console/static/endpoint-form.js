// The endpoint form, for making an endpoint and for changing one: every setting the API takes (URL,
// filters, headers, auth, retry policy, limits, formats), each control labelled and named by the API
// field it sets (`data-field`), so the API's validation problems are shown beside the control at fault.
// The browser checks nothing the API does not: the API's answer is the one judge.

import { field, h } from "./dom.js";

function input(name, attrs = {}) {
  return h("input", { name, "data-field": name, autocomplete: "off", ...attrs });
}

function select(name, options, chosen) {
  return h("select", { name, "data-field": name }, options.map(([value, label]) => h("option", { value, selected: value === chosen }, label)));
}

const list = (text) => text.split(/[\s,]+/).filter(Boolean);
const number = (text) => (text.trim() === "" ? undefined : Number(text));

/** "Name: value" lines to a header object (a line without a colon is sent as is, for the API to refuse). */
function headerLines(text) {
  const headers = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(":");
    if (at < 0) headers[line] = "";
    else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

/** A form for `endpoint` (null: a new one); `onSubmit(body, form)` gets the JSON body the API takes. */
export function endpointForm(endpoint, onSubmit) {
  const e = endpoint || {};
  const policy = e.retry_policy || {};
  const auth = e.auth || {};
  const controls = {
    url: input("url", { type: "url", required: true, value: e.url || "", placeholder: "https://example.com/hooks" }),
    description: input("description", { value: e.description || "" }),
    event_types: input("event_types", { value: (e.event_types || ["*"]).join(", ") }),
    source_ids: input("source_ids", { value: (e.source_ids || []).join(", ") }),
    headers: h("textarea", { name: "headers", "data-field": "headers", rows: 3 }, Object.entries(e.headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n")),
    auth: select("auth", [["", "None"], ["bearer", "Bearer token"], ["api_key", "API key header"], ["basic", "Basic (user and password)"]], auth.type || ""),
    auth_token: input("auth.token", { type: "password", placeholder: auth.type && auth.type !== "basic" ? "unchanged" : "" }),
    auth_header: input("auth.header_name", { value: auth.header_name || "X-API-Key" }),
    auth_username: input("auth.username", { value: auth.username || "" }),
    auth_password: input("auth.password", { type: "password", placeholder: auth.type === "basic" ? "unchanged" : "" }),
    schedule: input("retry_policy.schedule_seconds", { value: (policy.schedule_seconds || []).join(", "), placeholder: "5, 300, 1800" }),
    max_retries: input("retry_policy.max_retries", { type: "number", min: 0, value: policy.max_retries ?? "" }),
    initial: input("retry_policy.initial_delay_seconds", { type: "number", step: "any", value: policy.initial_delay_seconds ?? "" }),
    multiplier: input("retry_policy.backoff_multiplier", { type: "number", step: "any", value: policy.backoff_multiplier ?? "" }),
    max_delay: input("retry_policy.max_delay_seconds", { type: "number", step: "any", value: policy.max_delay_seconds ?? "" }),
    jitter: input("retry_policy.jitter", { type: "checkbox", checked: policy.jitter ?? true }),
    timeout: input("timeout_seconds", { type: "number", step: "any", value: e.timeout_seconds ?? "" }),
    rate: input("rate_limit_per_second", { type: "number", step: "any", value: e.rate_limit_per_second ?? "" }),
    in_flight: input("max_in_flight", { type: "number", value: e.max_in_flight ?? "" }),
    signature: select("signature_format", [["standard", "Standard Webhooks"], ["legacy", "Legacy X-Webhook-Signature"]], e.signature_format || "standard"),
    payload: select("payload_format", [["standard", "JSON (standard)"], ["slack", "Slack message"], ["discord", "Discord message"]], e.payload_format || "standard"),
    active: input("active", { type: "checkbox", checked: e.active ?? true }),
  };
  const c = controls;
  const form = h(
    "form",
    { class: "endpoint-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, "Where"),
      field("URL", c.url, "Where the events are POSTed."),
      field("Description", c.description)),
    h("fieldset", {}, h("legend", {}, "Which events"),
      field("Event types", c.event_types, "Comma-separated; * wildcards, e.g. order.*, user.created."),
      field("Only from sources", c.source_ids, "Source ids, comma-separated; empty: every source.")),
    h("fieldset", {}, h("legend", {}, "Request"),
      field("Extra headers", c.headers, "One 'Name: value' per line."),
      field("Authentication", c.auth),
      field("Token", c.auth_token, "Bearer or API key; write-only, leave empty to keep it."),
      field("API key header", c.auth_header),
      field("User name", c.auth_username),
      field("Password", c.auth_password, "Write-only, leave empty to keep it.")),
    h("fieldset", { "data-field": "retry_policy" }, h("legend", {}, "Retries"),
      field("Retry schedule (seconds)", c.schedule, "Comma-separated delays; or use the exponential fields below. Empty: the default schedule."),
      field("Max retries", c.max_retries),
      field("Initial delay (s)", c.initial),
      field("Backoff multiplier", c.multiplier),
      field("Max delay (s)", c.max_delay),
      field("Jitter", c.jitter)),
    h("fieldset", {}, h("legend", {}, "Limits and format"),
      field("Timeout (s)", c.timeout),
      field("Rate limit (per second)", c.rate),
      field("Max in flight", c.in_flight),
      field("Signature", c.signature),
      field("Body format", c.payload),
      endpoint ? field("Active", c.active) : null),
    h("div", { class: "form-errors", "aria-live": "assertive" }),
    h("button", { type: "submit", class: "primary" }, endpoint ? "Save endpoint" : "Create endpoint"),
  );
  const authFields = { bearer: [c.auth_token], api_key: [c.auth_token, c.auth_header], basic: [c.auth_username, c.auth_password] };
  const showAuth = () => {
    for (const one of [c.auth_token, c.auth_header, c.auth_username, c.auth_password]) {
      one.closest(".field").hidden = !(authFields[c.auth.value] || []).includes(one);
    }
  };
  c.auth.addEventListener("change", showAuth);
  showAuth();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(body(controls, endpoint), form);
  });
  return form;
}

function body(c, endpoint) {
  const sent = {
    url: c.url.value.trim(),
    description: c.description.value.trim() || null,
    event_types: list(c.event_types.value),
    source_ids: list(c.source_ids.value),
    headers: headerLines(c.headers.value),
    signature_format: c.signature.value,
    payload_format: c.payload.value,
  };
  const policy = { jitter: c.jitter.checked };
  if (c.schedule.value.trim()) policy.schedule_seconds = list(c.schedule.value).map(Number);
  for (const [key, control] of [["max_retries", c.max_retries], ["initial_delay_seconds", c.initial], ["backoff_multiplier", c.multiplier], ["max_delay_seconds", c.max_delay]]) {
    if (number(control.value) !== undefined) policy[key] = number(control.value);
  }
  sent.retry_policy = policy;
  for (const [key, control] of [["timeout_seconds", c.timeout], ["max_in_flight", c.in_flight]]) {
    if (number(control.value) !== undefined) sent[key] = number(control.value);
  }
  sent.rate_limit_per_second = number(c.rate.value) ?? null;
  const auth = authBody(c, endpoint);
  if (auth !== undefined) sent.auth = auth;
  if (endpoint) sent.active = c.active.checked;
  else {
    // A new endpoint: leave out what is empty, so the API's defaults apply.
    if (sent.description === null) delete sent.description;
    if (sent.rate_limit_per_second === null) delete sent.rate_limit_per_second;
  }
  return sent;
}

/** The auth to send: null to clear it, undefined to keep the stored one (credentials are write-only). */
function authBody(c, endpoint) {
  const type = c.auth.value;
  if (!type) return endpoint?.auth ? null : undefined;
  const unchanged = endpoint?.auth?.type === type;
  if (type === "basic") {
    if (unchanged && !c.auth_password.value && c.auth_username.value === endpoint.auth.username) return undefined;
    return { type, username: c.auth_username.value, password: c.auth_password.value };
  }
  if (unchanged && !c.auth_token.value && (type !== "api_key" || c.auth_header.value === endpoint.auth.header_name)) return undefined;
  return type === "bearer" ? { type, token: c.auth_token.value } : { type, token: c.auth_token.value, header_name: c.auth_header.value };
}
