// One message: an own event (GET /v1/events/{id}) or one a source received (GET /v1/received-events/{id}),
// its payload pretty-printed into a text node (so `<script>` in a payload is shown, never run), every
// attempt to deliver it (request headers with credentials masked, status, latency, response body), and
// resending it to every endpoint it is for or to one.

import { api, ApiFailure } from "../api.js";
import { failure, field, h, moment, statusBadge } from "../dom.js";
import { attemptCard, bodyBlock, everything, headersTable, jsonBlock, poll } from "../widgets.js";

async function load(id) {
  const own = `/v1/events/${encodeURIComponent(id)}`;
  try {
    return { kind: "own", event: await api("GET", own) };
  } catch (error) {
    if (!(error instanceof ApiFailure) || error.status !== 404) throw error;
  }
  return { kind: "received", event: await api("GET", `/v1/received-events/${encodeURIComponent(id)}`) };
}

function facts(kind, event) {
  const rows = [
    ["Id", h("code", {}, event.id)],
    ["Type", h("code", {}, event.event_type)],
    ["Status", statusBadge(event.status ?? "received")],
  ];
  if (kind === "own") {
    rows.push(["Occurred", moment(event.occurred_at)]);
    if (event.severity) rows.push(["Severity", event.severity]);
    if (event.target_endpoint_id) rows.push(["Only for endpoint", h("code", {}, event.target_endpoint_id)]);
  } else {
    rows.push(["Received", moment(event.received_at)], ["Source", h("span", {}, event.provider, " ", h("code", {}, event.source_id))]);
    rows.push(["From", h("code", {}, event.client_ip)], ["Signature", event.verification.verified ? `verified (${event.verification.scheme})` : "unsigned"]);
  }
  return h("dl", { class: "facts" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function content(kind, event) {
  if (event.payload_erased_at) return h("p", {}, "Its payload was erased ", moment(event.payload_erased_at), ".");
  if (kind === "own") {
    return h("div", {}, h("h2", {}, "Payload"), jsonBlock(event.payload, "Payload"),
      Object.keys(event.context || {}).length ? [h("h2", {}, "Context"), jsonBlock(event.context, "Context")] : null,
      Object.keys(event.headers || {}).length ? headersTable(event.headers, "Headers sent with it") : null);
  }
  return h("div", {}, h("h2", {}, "Body"), bodyBlock(event.body, "Body"), h("h2", {}, "Headers as received"), headersTable(event.headers, "Headers as received"));
}

function resendForm(id, endpoints, onSent) {
  const target = h("select", { name: "endpoint_id" }, h("option", { value: "" }, "every endpoint it is for"), endpoints.map((e) => h("option", { value: e.id }, `${e.description || e.url} (${e.id})`)));
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "resend" }, field("Resend to", target), h("button", { type: "submit" }, "Resend"), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", `/v1/events/${encodeURIComponent(id)}/resend`, target.value ? { endpoint_id: target.value } : {});
      out.replaceChildren(h("p", { role: "status" }, `Requeued to ${answer.requeued} endpoint(s); new attempts appear below.`));
      onSent();
    } catch (error) {
      out.replaceChildren(failure(error));
    }
  });
  return form;
}

export async function render(root, params) {
  const { kind, event } = await load(params.id);
  const attemptsPath = `/v1/events/${encodeURIComponent(event.id)}/attempts`;
  const attempts = h("div", { class: "attempts", "aria-live": "polite" });
  let seen = -1;
  const drawAttempts = async () => {
    const found = await everything(attemptsPath);
    if (found.length !== seen) {
      seen = found.length;
      attempts.replaceChildren(...(found.length ? found.map(attemptCard) : [h("p", { class: "empty" }, "No attempt yet.")]));
    }
    return found.length;
  };
  const endpoints = await everything("/v1/endpoints");
  root.append(
    h("p", {}, h("a", { href: kind === "received" ? "#/messages?kind=received" : "#/messages" }, "← Messages")),
    h("h1", {}, kind === "received" ? "Received message" : "Event"),
    facts(kind, event),
    content(kind, event),
    h("section", { class: "card", "aria-labelledby": "attempts-head" }, h("h2", { id: "attempts-head" }, "Attempts"),
      resendForm(event.id, endpoints, () => {
        const before = seen;
        poll(attempts, async () => (await drawAttempts()) > before, 500);
      }),
      attempts),
  );
  await drawAttempts();
  // Still in flight: keep watching until every attempt so far has an answer.
  poll(attempts, async () => {
    await drawAttempts();
    return !["pending", "failing"].includes((await load(event.id)).event.status);
  }, 2000);
}
