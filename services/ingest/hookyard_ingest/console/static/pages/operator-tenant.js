// One tenant, for the operator: its state, its dead letters, disable/enable, and "act as".

import { actAs, api } from "../api.js";
import { button, failure, h, moment, statusBadge } from "../dom.js";

export async function render(root, params) {
  const id = params.id;
  const body = h("div");
  const draw = async () => {
    const tenant = await api("GET", `/v1/tenants/${encodeURIComponent(id)}`);
    const toggle = button(tenant.disabled ? "Enable" : "Disable", async () => {
      try {
        await api("POST", `/v1/tenants/${encodeURIComponent(id)}/${tenant.disabled ? "enable" : "disable"}`);
        await draw();
      } catch (error) {
        body.append(failure(error));
      }
    });
    body.replaceChildren(
      h("h1", {}, `Tenant ${tenant.name}`),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Id"), h("dd", {}, h("code", {}, tenant.id)),
        h("dt", {}, "Made"), h("dd", {}, moment(tenant.created_at)),
        h("dt", {}, "State"), h("dd", {}, statusBadge(tenant.disabled ? "disabled" : "active")),
      ),
      h(
        "p",
        { class: "actions" },
        toggle,
        " ",
        button("Act as this tenant", async () => {
          await actAs(id);
          location.hash = "#/endpoints";
        }),
        " ",
        h("a", { href: "#/operator" }, "Back to the operator view"),
      ),
    );
  };
  root.append(body);
  await draw();
}
