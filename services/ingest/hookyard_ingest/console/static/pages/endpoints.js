// Endpoints: each with its health (active, failing since, paused, disabled and why) and its last 24 h
// of attempts as a chart (GET /v1/endpoints/{id}/stats); and the form that makes a new one, whose
// signing secret is shown once, right after.

import { api } from "../api.js";
import { copyButton, failure, h, table } from "../dom.js";
import { endpointForm } from "../endpoint-form.js";
import { deliveryChart, endpointHealth, everything, showFailure } from "../widgets.js";

async function chartOf(endpoint) {
  try {
    return deliveryChart(await api("GET", `/v1/endpoints/${encodeURIComponent(endpoint.id)}/stats?hours=24&buckets=24`));
  } catch (error) {
    return failure(error);
  }
}

function made(endpoint) {
  return h(
    "section",
    { class: "card made", role: "status" },
    h("h2", {}, "Endpoint created"),
    h("p", {}, "Its signing secret, shown this once here (later on its page):"),
    h("p", {}, h("code", { class: "secret" }, endpoint.secret), " ", copyButton(endpoint.secret, "Copy secret")),
    h("p", {}, h("a", { href: `#/endpoints/${encodeURIComponent(endpoint.id)}`, class: "button" }, "Open the endpoint and send a test event")),
  );
}

export async function render(root) {
  const list = h("div", { class: "endpoint-list" }, h("p", {}, "Loading…"));
  const news = h("div");
  const creating = h("section", { class: "card", hidden: true, "aria-labelledby": "new-endpoint" }, h("h2", { id: "new-endpoint" }, "New endpoint"));
  const toggle = h("button", { type: "button", class: "primary", "aria-expanded": "false", "aria-controls": "new-endpoint-form" }, "New endpoint");
  toggle.addEventListener("click", () => {
    creating.hidden = !creating.hidden;
    toggle.setAttribute("aria-expanded", String(!creating.hidden));
    if (!creating.hidden) creating.querySelector("input").focus();
  });
  const form = endpointForm(null, async (body, formElement) => {
    try {
      const endpoint = await api("POST", "/v1/endpoints", body);
      creating.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      formElement.reset();
      news.replaceChildren(made(endpoint));
      news.querySelector("a").focus();
      await draw();
    } catch (error) {
      showFailure(formElement, formElement.querySelector(".form-errors"), error);
    }
  });
  form.id = "new-endpoint-form";
  creating.append(form);
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Endpoints"), toggle), news, creating, list);

  async function draw() {
    const endpoints = await everything("/v1/endpoints");
    const charts = await Promise.all(endpoints.map(chartOf));
    const chartOfRow = new Map(endpoints.map((endpoint, i) => [endpoint.id, charts[i]]));
    list.replaceChildren(
      table(
        endpoints,
        [
          { label: "Endpoint", value: (e) => h("a", { href: `#/endpoints/${encodeURIComponent(e.id)}` }, e.description || e.url) },
          { label: "URL", value: (e) => h("code", { class: "url" }, e.url) },
          { label: "Health", value: endpointHealth },
          { label: "Events", value: (e) => e.event_types.join(", ") },
          { label: "Last 24 h", value: (e) => chartOfRow.get(e.id) },
        ],
        { caption: "Your endpoints", empty: "No endpoint yet: make one to start receiving events." },
      ),
    );
  }
  await draw();
}
