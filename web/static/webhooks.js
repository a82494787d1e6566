// Webhooks (admin): subscriptions of URLs to events, and each one's recent deliveries.
import { el, append, clear, $, table, when } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current, reload } from "./nav.js";

const EVENTS = ["update.finished", "update.failed", "update.canceled", "campaign.released", "campaign.paused",
  "campaign.finished", "campaign.aborted", "vehicle.created", "vehicle.deleted"];

async function webhooks() {
  const view = $("#view");
  const ok = current();
  const hooks = await api("GET", "/webhooks");
  if (!ok()) return;
  const url = el("input", { id: "webhook-url", placeholder: "https://receiver.example/sota", size: 36 });
  const secret = el("input", { id: "webhook-secret", type: "password", placeholder: "shared secret (8+ characters)", size: 24 });
  const boxes = EVENTS.map((e) => el("input", { type: "checkbox", value: e, "data-event": e }));
  const detail = el("div", { id: "webhook-detail" });

  async function showDeliveries(id) {
    try {
      const ds = await api("GET", "/webhooks/" + encodeURIComponent(id) + "/deliveries?limit=50");
      clear(detail, el("h2", {}, "Deliveries"),
        table(["When", "Event", "State", "Attempts", "Last answer", "Next try"], ds.map((d) => [
          when(d.at), d.event, el("span", { class: "badge " + d.state, "data-state": d.state }, d.state), String(d.attempts),
          d.lastError || (d.lastStatus ? String(d.lastStatus) : "—"), d.nextAt ? when(d.nextAt) : "—",
        ]), "No deliveries yet."));
    } catch (e) { showError(detail, e); }
  }

  append(view, el("h1", {}, "Webhooks"),
    el("p", { class: "muted" }, "Each delivery is signed: X-SOTA-Signature is sha256=HMAC-SHA256 of the body with the secret. Failures are retried for 24 hours."),
    el("form", { class: "card", id: "webhook-form", needs: "admin", onsubmit: async (ev) => {
      ev.preventDefault();
      const events = boxes.filter((b) => b.checked).map((b) => b.value);
      if (await act(() => api("POST", "/webhooks", { url: url.value.trim(), events, secret: secret.value }), "Webhook created")) reload();
    } },
      el("div", { class: "bar" }, url, secret),
      el("div", { class: "bar events" }, ...boxes.map((b) => el("label", {}, b, " " + b.value))),
      el("button", { type: "submit", id: "webhook-create" }, "Create webhook")),
    el("div", { class: "cols" },
      el("section", { class: "card" }, table(["URL", "Events", "Created", ""], hooks.map((h) => [
        el("code", {}, h.url), h.events.join(", "), when(h.createdAt),
        el("span", {},
          el("button", { class: "small", "data-deliveries": h.id, onclick: () => showDeliveries(h.id) }, "Deliveries"), " ",
          el("button", { class: "small danger", needs: "admin", "data-delete": h.id, onclick: async () => {
            if (confirm("Delete the webhook to " + h.url + "? Its pending deliveries are dropped.") &&
              await act(() => api("DELETE", "/webhooks/" + encodeURIComponent(h.id)), "Webhook deleted")) reload();
          } }, "Delete")),
      ]), "No webhooks.")),
      el("section", { class: "card" }, detail)));
  if (hooks.length) showDeliveries(hooks[0].id);
}

export const routes = [
  [/^#\/webhooks$/, webhooks],
];
