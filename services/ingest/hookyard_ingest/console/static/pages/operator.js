// The operator view: the platform at a glance (GET /v1/admin/overview) and the tenants
// (GET /v1/tenants), with disable/enable and "act as" to see the tenant pages as that tenant.

import { actAs, api } from "../api.js";
import { button, failure, h, moment, statusBadge, table } from "../dom.js";

/** "42 s", "3 min 5 s", "2 h 10 min": an age in seconds, for a person. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function queuesSection(queues) {
  const note = queues.age_known
    ? "Oldest: how long the queue has not been empty, from the broker's depth history (the oldest message's age while nothing consumes it)."
    : "Depths by AMQP: the oldest message's age is unknown (set HOOKYARD_RABBITMQ_MANAGEMENT_URL).";
  return h(
    "section",
    { "aria-labelledby": "queues-title" },
    h("h2", { id: "queues-title" }, "Queues"),
    h("p", { class: "hint" }, note, queues.note ? ` ${queues.note}` : ""),
    table(queues.data, [
      { label: "Queue", value: (q) => h("code", {}, q.name) },
      { label: "Messages", value: (q) => String(q.messages) },
      { label: "Consumers", value: (q) => String(q.consumers) },
      { label: "Oldest", value: (q) => (q.messages ? (queues.age_known ? duration(q.oldest_age_seconds) : "unknown") : "empty") },
    ], { caption: `Source: ${queues.source === "management" ? "RabbitMQ management API" : "AMQP passive declares"}` }),
  );
}

function servicesSection(services) {
  return h(
    "section",
    { "aria-labelledby": "services-title" },
    h("h2", { id: "services-title" }, "Services"),
    table(services, [
      { label: "Service", value: (s) => s.name },
      { label: "Readiness", value: (s) => statusBadge(s.status) },
      { label: "Why", value: (s) => s.reason || "" },
    ]),
  );
}

function parkedSection(parked) {
  return h(
    "section",
    { "aria-labelledby": "parked-title" },
    h("h2", { id: "parked-title" }, `Parked in hookyard.invalid: ${parked.count}`),
    table(parked.data, [
      { label: "Message", value: (p) => h("code", {}, p.message_id || p.key) },
      { label: "From", value: (p) => p.origin_queue || "" },
      { label: "Reason", value: (p) => p.reason || "" },
      { label: "Bytes", value: (p) => String(p.body_bytes) },
    ], { empty: "Nothing is parked." }),
    parked.count ? h("p", { class: "hint" }, "Re-drive them with `hookyard parked redrive` or POST /v1/admin/parked/redrive.") : null,
  );
}

function deadLettersSection(dead) {
  return h(
    "section",
    { "aria-labelledby": "dead-title" },
    h("h2", { id: "dead-title" }, `Dead letters: ${dead.total}`),
    table(dead.by_tenant, [
      { label: "Tenant", value: (row) => h("a", { href: `#/operator/tenants/${encodeURIComponent(row.tenant_id)}` }, row.tenant_id) },
      { label: "Dead letters", value: (row) => String(row.count) },
    ], { empty: "No tenant has dead letters." }),
  );
}

async function enter(tenantId) {
  await actAs(tenantId);
  location.hash = "#/endpoints";
}

function tenantsSection(tenants, redraw) {
  const toggle = (tenant) =>
    button(tenant.disabled ? "Enable" : "Disable", async (event) => {
      event.target.disabled = true;
      try {
        await api("POST", `/v1/tenants/${encodeURIComponent(tenant.id)}/${tenant.disabled ? "enable" : "disable"}`);
        await redraw();
      } catch (error) {
        event.target.after(failure(error));
        event.target.disabled = false;
      }
    }, { "aria-label": `${tenant.disabled ? "Enable" : "Disable"} tenant ${tenant.name}` });
  return h(
    "section",
    { "aria-labelledby": "tenants-title" },
    h("h2", { id: "tenants-title" }, "Tenants"),
    table(tenants, [
      { label: "Tenant", value: (t) => h("a", { href: `#/operator/tenants/${encodeURIComponent(t.id)}` }, t.name) },
      { label: "Id", value: (t) => h("code", {}, t.id) },
      { label: "Made", value: (t) => moment(t.created_at) },
      { label: "State", value: (t) => statusBadge(t.disabled ? "disabled" : "active") },
      {
        label: "Actions",
        value: (t) => h("span", { class: "actions" }, toggle(t), " ", button("Act as", () => enter(t.id), { "aria-label": `Act as tenant ${t.name}` })),
      },
    ], { empty: "No tenants yet: POST /v1/tenants makes one." }),
  );
}

export async function render(root) {
  const body = h("div", { class: "operator" });
  const draw = async () => {
    body.setAttribute("aria-busy", "true"); // until the new figures are in (tests wait for it too)
    try {
      await fill();
    } finally {
      body.removeAttribute("aria-busy");
    }
  };
  const fill = async () => {
    const [overview, tenants] = await Promise.all([api("GET", "/v1/admin/overview"), api("GET", "/v1/tenants?limit=100")]);
    body.replaceChildren(
      h("p", { class: "hint" }, "As of ", moment(overview.generated_at), "."),
      queuesSection(overview.queues),
      servicesSection(overview.services),
      parkedSection(overview.parked),
      deadLettersSection(overview.dead_letters),
      tenantsSection(tenants.data, draw),
    );
  };
  root.append(
    h("div", { class: "heading" }, h("h1", {}, "Operator"), button("Refresh", () => draw().catch((e) => body.prepend(failure(e))), { class: "refresh" })),
    body,
  );
  await draw();
}
