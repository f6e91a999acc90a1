// What the monitor board and a monitor's page share: its uptime over 24 h / 7 d / 30 d in words, and
// the actions on it (pause, resume, a new ping token), each redrawing the page once the API agreed.

import { api } from "./api.js";
import { button, failure, h, moment } from "./dom.js";

const WINDOWS = [["24h", "24 h"], ["7d", "7 d"], ["30d", "30 d"]];

/** "99.5%" per window, or "–" when the monitor was not watched in it. */
export function uptimeList(stats) {
  return h(
    "dl",
    { class: "uptime" },
    WINDOWS.map(([key, label]) => {
      const percent = stats?.uptime?.[key]?.percent;
      return [h("dt", {}, `Uptime ${label}`), h("dd", {}, percent === null || percent === undefined ? "–" : `${percent}%`)];
    }),
  );
}

/** When the next heartbeat is due: a time, "overdue" once late or down, or why none is expected. */
export function nextExpected(monitor) {
  if (!monitor.heartbeat_interval_seconds) return "pushes only";
  if (monitor.state === "paused") return "paused";
  if (monitor.late_at) return moment(monitor.late_at);
  return ["late", "down"].includes(monitor.state) ? h("strong", {}, "overdue") : "after the first ping";
}

/** Pause or resume, and regenerate the token; `redraw()` after each; `out` shows the answer. */
export function monitorActions(monitor, redraw, out) {
  const path = `/v1/monitors/${encodeURIComponent(monitor.id)}`;
  const act = (label, verb, confirmText) =>
    button(label, async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      try {
        const changed = await api("POST", `${path}/${verb}`);
        if (verb === "regenerate-token") out.replaceChildren(h("p", { role: "status" }, "New ping URL: ", h("code", {}, changed.ping_url)));
        await redraw();
      } catch (error) {
        out.replaceChildren(failure(error));
      }
    }, { "aria-label": `${label} ${monitor.name}` });
  return h(
    "div",
    { class: "actions" },
    monitor.state === "paused" ? act("Resume", "resume") : act("Pause", "pause"),
    act("Regenerate token", "regenerate-token", "Give this monitor a new ping URL? The current one stops working at once."),
  );
}
