// Signing in: the key goes once, in a POST body, to /console/session, which answers with a cookie
// (HttpOnly: no script here can read it). The field is cleared before the call and the key kept nowhere.

import { currentSession, signIn } from "../api.js";
import { clear, failure, field, h } from "../dom.js";

export async function render(root) {
  const input = h("input", { type: "password", name: "key", autocomplete: "off", spellcheck: "false", required: true });
  const message = h("div", { class: "message", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card sign-in", method: "post", action: "#/sign-in" },
    h("h1", {}, "Sign in to Hookyard"),
    h("p", {}, "Use a tenant's API key to see its endpoints, messages and monitors, or the admin token for the operator view."),
    field("API key or admin token", input, "Traded for a session that ends after a while without use; the key is not kept in the browser."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(message);
    const key = input.value.trim();
    input.value = "";
    try {
      await signIn(key);
      location.hash = "#/";
    } catch (error) {
      message.append(failure(error));
      input.focus();
    }
  });
  root.append(form);
  if (currentSession()) message.append(h("p", {}, "You are signed in; signing in again replaces that session."));
  input.focus();
}
