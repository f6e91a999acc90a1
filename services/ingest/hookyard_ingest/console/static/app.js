// The console's shell: a hash router over page modules, the nav, sign-out and the acting-as banner.
// Each page is a module `pages/<name>.js` exporting `render(root, params)`, loaded when first shown;
// `root` is a fresh element, so a page still loading when the user moves on draws nowhere.

import { actAs, currentSession, loadSession, signOut } from "./api.js";
import { button, clear, failure, h } from "./dom.js";

/** The pages, by name. */
export const ROUTES = {
  "sign-in": () => import("./pages/sign-in.js"),
  endpoints: () => import("./pages/endpoints.js"),
  endpoint: () => import("./pages/endpoint.js"),
  messages: () => import("./pages/messages.js"),
  message: () => import("./pages/message.js"),
  "dead-letters": () => import("./pages/dead-letters.js"),
  sources: () => import("./pages/sources.js"),
  monitors: () => import("./pages/monitors.js"),
  monitor: () => import("./pages/monitor.js"),
  operator: () => import("./pages/operator.js"),
  "operator-tenant": () => import("./pages/operator-tenant.js"),
};

/** Hash paths to page names; a `:name` segment is passed to the page as `params.name`. */
export const PATHS = [
  ["/sign-in", "sign-in"],
  ["/endpoints", "endpoints"],
  ["/endpoints/:id", "endpoint"],
  ["/messages", "messages"],
  ["/messages/:id", "message"],
  ["/dead-letters", "dead-letters"],
  ["/sources", "sources"],
  ["/monitors", "monitors"],
  ["/monitors/:id", "monitor"],
  ["/operator", "operator"],
  ["/operator/tenants/:id", "operator-tenant"],
];

/** The tenant pages' links: shown to a tenant, and to an admin acting as one. */
const TENANT_NAV = [
  ["#/endpoints", "Endpoints"],
  ["#/messages", "Messages"],
  ["#/dead-letters", "Dead letters"],
  ["#/sources", "Sources"],
  ["#/monitors", "Monitors"],
];

/** The page a hash names and its params (path segments, then the hash's `?query`), or null. */
export function match(hash) {
  const [path, query = ""] = hash.replace(/^#/, "").split("?");
  const segments = path.split("/");
  for (const [pattern, name] of PATHS) {
    const parts = pattern.split("/");
    if (parts.length !== segments.length) continue;
    const params = Object.fromEntries(new URLSearchParams(query));
    if (parts.every((part, i) => (part.startsWith(":") ? (params[part.slice(1)] = decodeURIComponent(segments[i])) : part === segments[i]))) {
      return { name, params };
    }
  }
  return null;
}

/** Where a session starts: the operator view for an admin acting as nobody, else the endpoints. */
function home(session) {
  if (!session) return "#/sign-in";
  return session.role === "admin" && !session.tenant_id ? "#/operator" : "#/endpoints";
}

function drawNav(session) {
  const nav = clear(document.getElementById("nav"));
  const who = clear(document.getElementById("who"));
  const banner = clear(document.getElementById("banner"));
  if (!session) return;
  const links = [...(session.tenant_id ? TENANT_NAV : []), ...(session.role === "admin" ? [["#/operator", "Operator"]] : [])];
  const here = location.hash.split("?")[0];
  nav.append(
    h("ul", {}, links.map(([href, label]) => h("li", {}, h("a", { href, "aria-current": here.startsWith(href) ? "page" : null }, label)))),
  );
  who.append(
    h("span", { class: "role" }, session.role === "admin" ? "Operator" : `Tenant ${session.tenant_id}`),
    button("Sign out", async () => {
      await signOut();
      location.hash = "#/sign-in";
    }),
  );
  if (session.role === "admin" && session.tenant_id) {
    banner.append(
      h(
        "div",
        { class: "acting", role: "status" },
        h("span", {}, "Acting as tenant ", h("strong", {}, session.tenant_id), ": these pages show its data."),
        button("Stop acting", async () => {
          await actAs(null);
          location.hash = "#/operator";
        }),
      ),
    );
  }
}

let shown = 0; // the latest navigation: an older one still loading draws nothing

async function show() {
  const turn = ++shown;
  let session = currentSession();
  const target = match(location.hash);
  if (!session && target?.name !== "sign-in") session = await loadSession();
  if (turn !== shown) return;
  if (!target || (!session && target.name !== "sign-in")) {
    location.replace(target ? "#/sign-in" : home(session));
    return;
  }
  drawNav(session);
  const main = document.getElementById("main");
  const root = h("div", { class: `page page-${target.name}` });
  main.replaceChildren(root);
  try {
    const page = await ROUTES[target.name]();
    if (turn === shown) await page.render(root, target.params);
    // A new page is announced like a page load: focus moves to it (unless the page focused a field).
    if (turn === shown && !root.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (error) {
    if (turn === shown) root.replaceChildren(failure(error));
  }
}

window.addEventListener("hashchange", show);
window.addEventListener("hookyard:session", () => drawNav(currentSession()));
show();
