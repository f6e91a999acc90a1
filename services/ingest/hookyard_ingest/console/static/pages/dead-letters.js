// Dead letters: what could not be delivered, filtered by endpoint and time; replaying one, or every one
// of a time window with a progress bar fed by GET /v1/dead-letters/replays/{id} (delivered, failed again,
// still in flight) until the replay is done.

import { api } from "../api.js";
import { button, failure, field, h, moment, statusBadge, table } from "../dom.js";
import { isoInstant, localInput, poll, progressBar, query, showFailure } from "../widgets.js";

const HOUR = 3600 * 1000;

function filterForm(params) {
  const endpoint = h("input", { name: "endpoint_id", "data-field": "endpoint_id", value: params.endpoint_id || "", placeholder: "ep_…", autocomplete: "off" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter dead letters" },
    field("Endpoint", endpoint), h("button", { type: "submit" }, "Filter"), h("div", { class: "form-errors", "aria-live": "assertive" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/dead-letters${query({ endpoint_id: endpoint.value.trim() })}`;
  });
  return form;
}

function replayRange(params, onDone) {
  const now = new Date();
  const since = h("input", { type: "datetime-local", name: "since", "data-field": "since", value: localInput(new Date(now - 24 * HOUR)) });
  const until = h("input", { type: "datetime-local", name: "until", "data-field": "until", value: localInput(new Date(now.getTime() + 60000)) });
  const endpoint = h("input", { name: "endpoint_id", "data-field": "endpoint_id", value: params.endpoint_id || "", placeholder: "every endpoint", autocomplete: "off" });
  const progress = progressBar("Replay progress");
  progress.element.hidden = true;
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h("form", { class: "replay-range" },
    field("From", since), field("Until", until), field("Endpoint", endpoint, "Empty: every endpoint."),
    h("button", { type: "submit", class: "primary" }, "Replay this window"), errors, progress.element);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = { since: isoInstant(since.value), until: isoInstant(until.value) };
    if (endpoint.value.trim()) body.endpoint_id = endpoint.value.trim();
    try {
      const started = await api("POST", "/v1/dead-letters/replay", body);
      progress.element.hidden = false;
      progress.update(0, started.requeued, started.requeued ? `0 of ${started.requeued} done` : "Nothing to replay in this window.");
      if (!started.requeued) return;
      poll(form, async () => {
        const p = await api("GET", `/v1/dead-letters/replays/${encodeURIComponent(started.replay_id)}`);
        const finished = p.delivered + p.failed_again;
        progress.update(finished, p.requeued, `${finished} of ${p.requeued} done: ${p.delivered} delivered, ${p.failed_again} failed again, ${p.replaying} in flight`);
        if (p.done) onDone();
        return p.done;
      }, 500);
    } catch (error) {
      showFailure(form, errors, error);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "range-head" }, h("h2", { id: "range-head" }, "Replay a time window"), form);
}

export async function render(root, params) {
  const list = h("div", { class: "results", "aria-live": "polite" });
  const draw = async () => {
    const page = await api("GET", `/v1/dead-letters${query({ endpoint_id: params.endpoint_id, limit: 100 })}`);
    list.replaceChildren(
      table(page.data, [
        { label: "Event", value: (d) => h("a", { href: `#/messages/${encodeURIComponent(d.event_id)}` }, d.event_type) },
        { label: "Endpoint", value: (d) => h("a", { href: `#/endpoints/${encodeURIComponent(d.endpoint_id)}` }, h("code", {}, d.endpoint_id)) },
        { label: "State", value: (d) => statusBadge(d.state) },
        { label: "Why", value: (d) => d.reason || "" },
        { label: "Attempts", value: (d) => String(d.attempt_count) },
        { label: "Dead since", value: (d) => moment(d.dead_at) },
        { label: "Replay", value: (d) => (d.can_retry ? replayOne(d, draw) : h("span", { class: "muted" }, d.state === "dead" ? "endpoint disabled or gone" : "in flight")) },
      ], { caption: "Dead letters, newest first", empty: "No dead letter: everything was delivered." }),
    );
  };
  root.append(h("h1", {}, "Dead letters"), filterForm(params), replayRange(params, draw), list);
  await draw();
}

function replayOne(deadLetter, redraw) {
  const out = h("span", { "aria-live": "polite" });
  const replay = button("Replay", async () => {
    replay.disabled = true;
    try {
      await api("POST", `/v1/dead-letters/${encodeURIComponent(deadLetter.id)}/retry`);
      out.replaceChildren(" replaying…");
      setTimeout(redraw, 1500);
    } catch (error) {
      out.replaceChildren(failure(error));
      replay.disabled = false;
    }
  }, { "aria-label": `Replay ${deadLetter.event_type} to ${deadLetter.endpoint_id}` });
  return h("span", {}, replay, out);
}
