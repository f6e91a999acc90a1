// One endpoint: its health and 24 h chart, a test event whose attempt is watched until it arrives,
// the secret (shown on demand, rotated with a grace period), its recent dead letters and messages,
// and the form that changes it. A test event is an ordinary `POST /v1/events` aimed at this endpoint
// alone (`target_endpoint_id`): it goes the way every event goes, so what it shows is the truth.

import { api } from "../api.js";
import { button, copyButton, failure, h, moment, statusBadge } from "../dom.js";
import { endpointForm } from "../endpoint-form.js";
import { attemptCard, deliveryChart, endpointHealth, poll, showFailure } from "../widgets.js";

const TEST_EVENT_TYPE = "console.test";

function testEvent(endpoint, onSettled) {
  const out = h("div", { class: "test-result", "aria-live": "polite" });
  const send = button("Send a test event", async () => {
    send.disabled = true;
    out.replaceChildren(h("p", {}, "Sending…"));
    try {
      const sent = await api("POST", "/v1/events", {
        event_type: TEST_EVENT_TYPE,
        payload: { test: true, sent_at: new Date().toISOString(), endpoint_id: endpoint.id },
        target_endpoint_id: endpoint.id,
      });
      const waiting = h("p", {}, "Event ", h("a", { href: `#/messages/${encodeURIComponent(sent.id)}` }, sent.id), " published; waiting for its attempt…");
      out.replaceChildren(waiting);
      // Watched until it is settled: delivered, or dead once its retries are spent.
      poll(out, async () => {
        const [attempts, event] = await Promise.all([
          api("GET", `/v1/events/${encodeURIComponent(sent.id)}/attempts`),
          api("GET", `/v1/events/${encodeURIComponent(sent.id)}`),
        ]);
        if (attempts.data.length) {
          waiting.replaceChildren("Event ", h("a", { href: `#/messages/${encodeURIComponent(sent.id)}` }, sent.id), " ", statusBadge(event.status));
          out.replaceChildren(waiting, ...attempts.data.map(attemptCard));
        }
        const settled = attempts.data.length > 0 && ["delivered", "dead"].includes(event.status);
        if (settled) onSettled();
        return settled;
      }, 500);
    } catch (error) {
      out.replaceChildren(failure(error));
    } finally {
      send.disabled = false;
    }
  });
  return h("section", { class: "card", "aria-labelledby": "test-head" }, h("h2", { id: "test-head" }, "Test"), h("p", {}, `Sends a ${TEST_EVENT_TYPE} event to this endpoint only.`), send, out);
}

function secret(endpoint) {
  const out = h("div", { "aria-live": "polite" });
  const show = button("Show secret", async () => {
    try {
      const answer = await api("GET", `/v1/endpoints/${encodeURIComponent(endpoint.id)}/secret`);
      out.replaceChildren(h("p", {}, h("code", { class: "secret" }, answer.secret), " ", copyButton(answer.secret, "Copy secret")));
    } catch (error) {
      out.replaceChildren(failure(error));
    }
  });
  const rotate = button("Rotate secret", async () => {
    if (!window.confirm("Make a new signing secret? The current one keeps signing beside it for 24 hours.")) return;
    try {
      const answer = await api("POST", `/v1/endpoints/${encodeURIComponent(endpoint.id)}/rotate-secret`, {});
      out.replaceChildren(
        h("p", {}, "New secret: ", h("code", { class: "secret" }, answer.secret), " ", copyButton(answer.secret, "Copy secret")),
        h("p", {}, "The previous one signs beside it until ", moment(answer.previous_secret_expires_at), "."),
      );
    } catch (error) {
      out.replaceChildren(failure(error));
    }
  });
  return h("section", { class: "card", "aria-labelledby": "secret-head" }, h("h2", { id: "secret-head" }, "Signing secret"), h("div", { class: "actions" }, show, rotate), out);
}

async function deadLetters(endpoint) {
  const page = await api("GET", `/v1/dead-letters?endpoint_id=${encodeURIComponent(endpoint.id)}&limit=5`);
  return h(
    "section",
    { class: "card", "aria-labelledby": "dead-head" },
    h("h2", { id: "dead-head" }, "Recent dead letters"),
    page.data.length
      ? h("ul", {}, page.data.map((d) => h("li", {}, statusBadge(d.state), " ", h("a", { href: `#/messages/${encodeURIComponent(d.event_id)}` }, d.event_type), " ", moment(d.dead_at), " — ", d.reason || "")))
      : h("p", { class: "empty" }, "None."),
    h("p", {}, h("a", { href: `#/dead-letters?endpoint_id=${encodeURIComponent(endpoint.id)}` }, "All its dead letters"), " · ",
      h("a", { href: `#/messages?endpoint_id=${encodeURIComponent(endpoint.id)}` }, "Its messages")),
  );
}

export async function render(root, params) {
  const path = `/v1/endpoints/${encodeURIComponent(params.id)}`;
  const endpoint = await api("GET", path);
  const stats = await api("GET", `${path}/stats?hours=24&buckets=24`);
  const health = h("p", { class: "health" }, "Health: ", endpointHealth(endpoint));
  let chart = deliveryChart(stats, { width: 480, height: 80 });
  const saved = h("div", { "aria-live": "polite" });
  const form = endpointForm(endpoint, async (body, formElement) => {
    try {
      const stored = await api("PATCH", path, body);
      health.replaceChildren("Health: ", endpointHealth(stored));
      formElement.querySelector(".form-errors").replaceChildren();
      saved.replaceChildren(h("p", { class: "saved", role: "status" }, "Saved."));
    } catch (error) {
      saved.replaceChildren();
      showFailure(formElement, formElement.querySelector(".form-errors"), error);
    }
  });
  root.append(
    h("p", {}, h("a", { href: "#/endpoints" }, "← Endpoints")),
    h("h1", {}, endpoint.description || endpoint.url),
    h("p", {}, h("code", { class: "url" }, endpoint.url), " · ", h("code", {}, endpoint.id)),
    health,
    chart,
    testEvent(endpoint, async () => {
      const [now, series] = await Promise.all([api("GET", path), api("GET", `${path}/stats?hours=24&buckets=24`)]);
      health.replaceChildren("Health: ", endpointHealth(now));
      chart.replaceWith((chart = deliveryChart(series, { width: 480, height: 80 })));
    }),
    secret(endpoint),
    await deadLetters(endpoint),
    h("section", { class: "card", "aria-labelledby": "edit-head" }, h("h2", { id: "edit-head" }, "Settings"), form, saved),
  );
}
