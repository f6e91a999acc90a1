// The message log: the tenant's own events (GET /v1/events) or what its sources received
// (GET /v1/received-events), with the API's filters — type with wildcards, status, endpoint, source,
// time. The filters live in the page's address (#/messages?event_type=order.*), so a view can be
// shared and reloaded; the API judges them and its refusal is shown beside the filter at fault.

import { api } from "../api.js";
import { field, h, moment, statusBadge, table } from "../dom.js";
import { isoInstant, localInput, query, showFailure } from "../widgets.js";

const STATUSES = ["", "pending", "delivered", "failing", "dead"];
const FILTERS = ["event_type", "status", "endpoint_id", "source_id", "since", "until"];

function filterForm(params) {
  const received = params.kind === "received";
  const control = (name, attrs = {}) => h("input", { name, "data-field": name, value: params[name] || "", autocomplete: "off", ...attrs });
  const kind = h("select", { name: "kind" }, h("option", { value: "own", selected: !received }, "Your events"), h("option", { value: "received", selected: received }, "Received from sources"));
  const status = h("select", { name: "status", "data-field": "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === (params.status || "") }, s || "any")));
  const since = control("since", { type: "datetime-local", value: localInput(params.since) });
  const until = control("until", { type: "datetime-local", value: localInput(params.until) });
  const source = control("source_id", { placeholder: "src_…" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter messages" },
    field("Show", kind),
    field("Event type", control("event_type", { placeholder: "order.* or user.created" }), "Wildcards as in endpoint filters."),
    field("Status", status),
    field("Endpoint", control("endpoint_id", { placeholder: "ep_…" })),
    field("Source", source),
    field("Since", since),
    field("Until", until),
    h("button", { type: "submit", class: "primary" }, "Search"),
    h("div", { class: "form-errors", "aria-live": "assertive" }),
  );
  const sourceField = source.closest(".field");
  const showSource = () => (sourceField.hidden = kind.value !== "received");
  kind.addEventListener("change", showSource);
  showSource();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = { kind: kind.value === "received" ? "received" : "" };
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim();
      chosen[name] = name === "since" || name === "until" ? isoInstant(value) : value;
    }
    if (chosen.kind !== "received") chosen.source_id = "";
    location.hash = `#/messages${query(chosen)}`;
  });
  return form;
}

const ownColumns = [
  { label: "Event", value: (e) => h("a", { href: `#/messages/${encodeURIComponent(e.id)}` }, e.id) },
  { label: "Type", value: (e) => h("code", {}, e.event_type) },
  { label: "Status", value: (e) => statusBadge(e.status) },
  { label: "Logged", value: (e) => moment(e.logged_at) },
];

const receivedColumns = [
  { label: "Message", value: (m) => h("a", { href: `#/messages/${encodeURIComponent(m.id)}` }, m.id) },
  { label: "Type", value: (m) => h("code", {}, m.event_type) },
  { label: "Source", value: (m) => h("span", {}, m.provider, " ", h("code", {}, m.source_id)) },
  { label: "Signature", value: (m) => (m.verification.verified ? `verified (${m.verification.scheme})` : "unsigned") },
  { label: "Status", value: (m) => statusBadge(m.status) },
  { label: "Received", value: (m) => moment(m.received_at) },
];

export async function render(root, params) {
  const received = params.kind === "received";
  const form = filterForm(params);
  const results = h("div", { class: "results", "aria-live": "polite" });
  root.append(h("h1", {}, "Messages"), form, results);
  const path = received ? "/v1/received-events" : "/v1/events";
  const filters = Object.fromEntries(FILTERS.filter((name) => params[name] && (received || name !== "source_id")).map((name) => [name, params[name]]));
  const rows = [];

  async function more(cursor) {
    try {
      const page = await api("GET", path + query({ ...filters, limit: 50, cursor }));
      rows.push(...page.data);
      const next = page.next_cursor ? h("button", { type: "button", class: "more" }, "Older") : null;
      next?.addEventListener("click", () => more(page.next_cursor));
      results.replaceChildren(
        table(rows, received ? receivedColumns : ownColumns, {
          caption: received ? "Received from your sources, newest first" : "Your events, newest first",
          empty: page.next_cursor ? "None on this stretch of the log; look further back." : "No message matches.",
        }),
        next,
      );
    } catch (error) {
      showFailure(form, form.querySelector(".form-errors"), error);
    }
  }
  await more(null);
}
