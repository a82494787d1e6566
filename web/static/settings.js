// Settings: API tokens, hawkBit DDI gateway tokens and accounts. Every role manages its own tokens and
// password; gateway tokens, other accounts and their tokens are the admin's (only an admin lists them).
import { el, append, clear, $, table, when } from "./ui.js";
import { api, act, session, toLogin } from "./api.js";
import { current, reload } from "./nav.js";

async function settings() {
  const view = $("#view");
  const ok = current();
  const admin = session.role === "admin";
  const [tokens, accounts, gateways] = await Promise.all([api("GET", "/tokens"),
    admin ? api("GET", "/accounts") : [{ username: session.username }], admin ? api("GET", "/ddi/gateway_tokens") : []]);
  if (!ok()) return;
  const tokName = el("input", { id: "token-name", placeholder: "what the token is for", size: 28 });
  const secret = el("div", { id: "token-secret" });
  const user = el("input", { id: "account-name", placeholder: "username", size: 16, autocomplete: "off" });
  const pw = el("input", { id: "account-password", type: "password", placeholder: "password (8 or more)", size: 20, autocomplete: "new-password" });
  const who = el("select", { id: "password-account" }, accounts.map((a) => el("option", { value: a.username, selected: a.username === session.username }, a.username)));
  const newPw = el("input", { type: "password", placeholder: "new password", size: 20, autocomplete: "new-password" });
  const gwName = el("input", { id: "gateway-name", placeholder: "which gateway", size: 24 });
  const gwSecret = el("div", { id: "gateway-secret" });
  const gwList = el("div", { id: "gateway-list" }, gatewayTable(gateways));

  append(view, el("h1", {}, "Settings"),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "API tokens"),
        el("p", { class: "muted" }, "Scripts send a token as ", el("code", {}, "Authorization: Bearer <token>"), "; it needs no CSRF header. The secret is shown once."),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          const t = await act(() => api("POST", "/tokens", { name: tokName.value }), "Token created");
          if (!t) return;
          tokName.value = "";
          clear(secret, el("p", {}, "Copy it now, it is not shown again: ", el("code", { class: "secret" }, t.token)));
          const again = await api("GET", "/tokens");
          clear(tokList, tokenTable(again));
        } }, tokName, el("button", { type: "submit", class: "primary", id: "token-create" }, "Create token")),
        secret),
      el("section", { class: "card", needs: "admin" },
        el("h2", {}, "Device gateway tokens"),
        el("p", { class: "muted" }, "A hawkBit DDI gateway sends ", el("code", {}, "Authorization: GatewayToken <token>"), " and may act for any vehicle. The secret is shown once."),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          const t = await act(() => api("POST", "/ddi/gateway_tokens", { name: gwName.value }), "Gateway token created");
          if (!t) return;
          gwName.value = "";
          clear(gwSecret, el("p", {}, "Copy it now, it is not shown again: ", el("code", { class: "secret" }, t.token)));
          clear(gwList, gatewayTable(await api("GET", "/ddi/gateway_tokens")));
        } }, gwName, el("button", { type: "submit", class: "primary", id: "gateway-create" }, "Create gateway token")),
        gwSecret, gwList),
      el("section", { class: "card" },
        el("h2", {}, admin ? "Accounts" : "Password"),
        el("div", { needs: "admin" }, table(["Username", "Created", ""], accounts.map((a) => [a.username, when(a.createdAt),
          el("button", { class: "small danger", onclick: async () => {
            if (confirm("Delete account " + a.username + "?") && await act(() => api("DELETE", "/accounts/" + encodeURIComponent(a.username)), "Deleted " + a.username)) reload();
          } }, "Delete")]))),
        el("form", { class: "bar", needs: "admin", onsubmit: async (ev) => {
          ev.preventDefault();
          if (await act(() => api("POST", "/accounts", { username: user.value.trim(), password: pw.value }), "Account created")) reload();
        } }, user, pw, el("button", { type: "submit" }, "Add account")),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (await act(() => api("PUT", "/accounts/" + encodeURIComponent(who.value) + "/password", { password: newPw.value }), "Password changed; the account's sessions ended")) {
            newPw.value = "";
            if (who.value.toLowerCase() === String(session.username).toLowerCase()) toLogin();
          }
        } }, who, newPw, el("button", { type: "submit" }, "Change password")))));
  const tokList = el("div", { id: "token-list" }, tokenTable(tokens));
  view.querySelector(".card").append(tokList);

  function tokenTable(ts) {
    return table(["Name", "Owner", "Created", ""], ts.map((t) => [t.name, t.username, when(t.createdAt),
      el("button", { class: "small danger", onclick: async () => {
        if (confirm("Revoke token " + t.name + "?") && await act(() => api("DELETE", "/tokens/" + encodeURIComponent(t.id)), "Token revoked")) {
          clear(tokList, tokenTable(await api("GET", "/tokens")));
        }
      } }, "Revoke")]), "No API tokens.");
  }

  function gatewayTable(gs) {
    return table(["Name", "Created", ""], gs.map((g) => [g.name, when(g.createdAt),
      el("button", { class: "small danger", onclick: async () => {
        if (confirm("Revoke gateway token " + g.name + "?") && await act(() => api("DELETE", "/ddi/gateway_tokens/" + encodeURIComponent(g.id)), "Gateway token revoked")) {
          clear(gwList, gatewayTable(await api("GET", "/ddi/gateway_tokens")));
        }
      } }, "Revoke")]), "No gateway tokens.");
  }
}

export const routes = [
  [/^#\/settings$/, settings],
];
