// The monitor board: every monitor as a tile in its state's colour (up, late, degraded, down, paused,
// new), with its last ping, when the next is expected, its uptime over 24 h / 7 d / 30 d and its open
// incident; pause, resume and a new token from the tile. Down and late ones come first.

import { api } from "../api.js";
import { h, moment, statusBadge } from "../dom.js";
import { monitorActions, nextExpected, uptimeList } from "../monitor-controls.js";
import { everything, poll } from "../widgets.js";

const URGENCY = { down: 0, late: 1, degraded: 2, new: 3, up: 4, paused: 5 };

async function tile(monitor, redraw) {
  const stats = await api("GET", `/v1/monitors/${encodeURIComponent(monitor.id)}/stats`).catch(() => null);
  const out = h("div", { "aria-live": "polite" });
  const incident = monitor.open_incident_id
    ? h("p", { class: "incident" }, "Open incident since ", moment(monitor.state_changed_at), `: ${monitor.status_message || monitor.state}`)
    : null;
  return h(
    "li",
    { class: `tile state-${monitor.state}`, "data-monitor": monitor.id },
    h("h2", {}, h("a", { href: `#/monitors/${encodeURIComponent(monitor.id)}` }, monitor.name), " ", statusBadge(monitor.state)),
    h("dl", { class: "facts" },
      h("dt", {}, "Last ping"), h("dd", {}, moment(monitor.last_ping_at)),
      h("dt", {}, "Next expected"), h("dd", {}, nextExpected(monitor))),
    uptimeList(stats),
    incident,
    monitorActions(monitor, redraw, out),
    out,
  );
}

export async function render(root) {
  const board = h("ul", { class: "board", "aria-live": "polite" });
  const counts = h("p", { class: "counts" });
  const draw = async () => {
    const monitors = (await everything("/v1/monitors")).sort((a, b) => (URGENCY[a.state] ?? 9) - (URGENCY[b.state] ?? 9));
    const byState = {};
    for (const m of monitors) byState[m.state] = (byState[m.state] || 0) + 1;
    counts.replaceChildren(...Object.entries(byState).flatMap(([state, n]) => [statusBadge(state), ` ${n} `]));
    const tiles = await Promise.all(monitors.map((m) => tile(m, draw)));
    board.replaceChildren(...(tiles.length ? tiles : [h("li", { class: "empty" }, "No monitor yet: make one with POST /v1/monitors.")]));
  };
  root.append(h("h1", {}, "Monitors"), counts, board);
  await draw();
  // A board is watched: redraw it every 10 s while it is on screen.
  poll(board, async () => {
    await draw();
    return false;
  }, 10000);
}
