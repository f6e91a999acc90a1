// Sources: where providers send webhooks. Each with its ingest URL and a button that copies it, its
// provider, when its last message arrived and how many signatures it refused
// (GET /v1/sources/{id}/stats), and a link to its messages.

import { api } from "../api.js";
import { copyButton, failure, h, moment, table } from "../dom.js";
import { everything } from "../widgets.js";

async function statsOf(source) {
  try {
    return await api("GET", `/v1/sources/${encodeURIComponent(source.id)}/stats`);
  } catch (error) {
    return { error };
  }
}

export async function render(root) {
  const sources = await everything("/v1/sources");
  const stats = new Map(await Promise.all(sources.map(async (source) => [source.id, await statsOf(source)])));
  const failures = (s) => {
    const found = stats.get(s.id);
    if (found.error) return failure(found.error);
    if (!found.signature_failures) return "none";
    return h("span", { class: "warn" }, `${found.signature_failures}, last `, moment(found.last_signature_failure_at));
  };
  root.append(
    h("h1", {}, "Sources"),
    h("p", {}, "Give a provider its source's URL; every webhook it sends is verified, logged and delivered to your endpoints."),
    table(
      sources,
      [
        { label: "Source", value: (s) => h("span", {}, s.name, h("br"), h("code", {}, s.id)) },
        { label: "Provider", value: (s) => s.provider },
        { label: "Ingest URL", value: (s) => h("span", { class: "url-copy" }, h("code", { class: "url" }, s.url), " ", copyButton(s.url, "Copy URL")) },
        { label: "Last message", value: (s) => (stats.get(s.id).error ? "?" : moment(stats.get(s.id).last_received_at)) },
        { label: "Signature failures", value: failures },
        { label: "Messages", value: (s) => h("a", { href: `#/messages?kind=received&source_id=${encodeURIComponent(s.id)}` }, "Its messages") },
      ],
      { caption: "Your sources", empty: "No source yet: make one with POST /v1/sources or `hookyard sources create`." },
    ),
  );
}
