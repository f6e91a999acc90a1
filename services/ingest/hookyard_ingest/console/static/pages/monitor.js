// One monitor: its state, ping URL (copyable), last ping and next expected, uptime over 24 h / 7 d / 30 d,
// the timeline of its flips (a strip of coloured spans, and the list), its incidents and latest pings.

import { api } from "../api.js";
import { copyButton, h, moment, s, statusBadge, table } from "../dom.js";
import { monitorActions, nextExpected, uptimeList } from "../monitor-controls.js";

/** The flips as a strip over the window: each span the colour of the state it held. */
function timelineStrip(flips, since, now) {
  const width = 600;
  const span = now - since;
  const ordered = [...flips].sort((a, b) => new Date(a.at) - new Date(b.at));
  const parts = ordered.map((flip, i) => {
    const from = Math.max(new Date(flip.at).getTime(), since);
    const to = i + 1 < ordered.length ? new Date(ordered[i + 1].at).getTime() : now;
    return s("rect", { x: ((from - since) / span) * width, y: 0, width: Math.max(1, ((to - from) / span) * width), height: 16, class: `strip-${flip.to}` },
      s("title", {}, `${flip.to} from ${flip.at}`));
  });
  const label = `State changes since ${new Date(since).toISOString()}: ${ordered.length} flips`;
  return s("svg", { viewBox: `0 0 ${width} 16`, class: "timeline", role: "img", "aria-label": label, preserveAspectRatio: "none" }, s("title", {}, label), parts);
}

export async function render(root, params) {
  const path = `/v1/monitors/${encodeURIComponent(params.id)}`;
  const body = h("div");
  const out = h("div", { "aria-live": "polite" });
  const draw = async () => {
    const [monitor, stats, flips, incidents, checks] = await Promise.all([
      api("GET", path),
      api("GET", `${path}/stats`),
      api("GET", `${path}/flips?limit=100`),
      api("GET", `${path}/incidents?limit=20`),
      api("GET", `${path}/checks?limit=20`),
    ]);
    const now = Date.now();
    body.replaceChildren(
      h("h1", {}, monitor.name, " ", statusBadge(monitor.state)),
      monitor.status_message ? h("p", {}, monitor.status_message) : null,
      h("p", {}, "Ping URL: ", h("code", { class: "url" }, monitor.ping_url), " ", copyButton(monitor.ping_url, "Copy ping URL")),
      h("dl", { class: "facts" },
        h("dt", {}, "Last ping"), h("dd", {}, moment(monitor.last_ping_at)),
        h("dt", {}, "Next expected"), h("dd", {}, nextExpected(monitor)),
        h("dt", {}, "Down after"), h("dd", {}, monitor.deadline ? moment(monitor.deadline) : "–"),
        h("dt", {}, "Pings received"), h("dd", {}, String(monitor.pings_received))),
      uptimeList(stats),
      monitorActions(monitor, draw, out),
      out,
      h("section", { class: "card", "aria-labelledby": "flips-head" }, h("h2", { id: "flips-head" }, "Timeline"),
        // The last 24 h, or since the monitor was made when that is later.
        timelineStrip(flips.data, Math.max(now - 24 * 3600 * 1000, Date.parse(monitor.created_at)), now),
        table(flips.data, [
          { label: "When", value: (f) => moment(f.at) },
          { label: "From", value: (f) => statusBadge(f.from) },
          { label: "To", value: (f) => statusBadge(f.to) },
          { label: "Why", value: (f) => [f.reason, f.message ? ` — ${f.message}` : ""] },
        ], { caption: "State changes, newest first", empty: "No state change yet." })),
      h("section", { class: "card", "aria-labelledby": "incidents-head" }, h("h2", { id: "incidents-head" }, "Incidents"),
        table(incidents.data, [
          { label: "State", value: (i) => statusBadge(i.state) },
          { label: "Worst", value: (i) => statusBadge(i.worst_status) },
          { label: "Opened", value: (i) => moment(i.opened_at) },
          { label: "Resolved", value: (i) => (i.resolved_at ? moment(i.resolved_at) : "open") },
          { label: "Why", value: (i) => [i.reason, i.message ? ` — ${i.message}` : ""] },
        ], { caption: "Incidents, newest first", empty: "No incident." })),
      h("section", { class: "card", "aria-labelledby": "checks-head" }, h("h2", { id: "checks-head" }, "Latest pings"),
        table(checks.data, [
          { label: "When", value: (c) => moment(c.at) },
          { label: "Outcome", value: (c) => statusBadge(c.outcome) },
          { label: "Method", value: (c) => c.method },
          { label: "From", value: (c) => h("code", {}, c.client_ip) },
        ], { caption: "Pings, newest first", empty: "No ping yet." })),
    );
  };
  root.append(h("p", {}, h("a", { href: "#/monitors" }, "← Monitors")), body);
  await draw();
}
