// Admin UI of the SOTA server: a hash-routed single page over the REST API (/api/v1), written as plain
// ES modules served as they are (no build step, no framework). This entry module routes the address's
// "#/..." to a screen; each screen lives in its own module and exports its routes:
//   dashboard.js, vehicles.js, packages.js, components.js, filters.js, campaigns.js, requests.js (update requests),
//   dataplans.js, settings.js; shared: api.js (calls with CSRF, errors), ui.js (DOM, tables, formats),
//   nav.js (screen lifecycle), dryrun.js (dry-run answers); audit.js and webhooks.js (admin only).
// A new screen: a module exporting `routes`, one import and one spread below, a link in index.html's nav,
// and its file name in web.Assets (the server refuses any asset not listed there).
import { $, clear } from "./ui.js";
import { api, session, showError } from "./api.js";
import { enter, setRenderer } from "./nav.js";
import * as dashboard from "./dashboard.js";
import * as vehicles from "./vehicles.js";
import * as packages from "./packages.js";
import * as components from "./components.js";
import * as filters from "./filters.js";
import * as campaigns from "./campaigns.js";
import * as requests from "./requests.js";
import * as dataplans from "./dataplans.js";
import * as settings from "./settings.js";
import * as audit from "./audit.js";
import * as webhooks from "./webhooks.js";

const home = "#/dashboard";

const routes = [
  ...dashboard.routes,
  ...vehicles.routes,
  ...packages.routes,
  ...components.routes,
  ...filters.routes,
  ...campaigns.routes,
  ...requests.routes,
  ...dataplans.routes,
  ...settings.routes,
  ...audit.routes,
  ...webhooks.routes,
];

function route() {
  enter();
  const h = location.hash || home;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", h.startsWith("#/" + a.dataset.nav));
  }
  const view = $("#view");
  for (const [re, fn] of routes) {
    const m = h.match(re);
    if (m) {
      clear(view);
      const args = m.slice(1).map(decodeURIComponent);
      Promise.resolve(fn(...args)).catch((e) => showError(view, e));
      return;
    }
  }
  location.hash = home;
}

async function start() {
  try {
    const s = await api("GET", "/session");
    session.csrf = s.csrfToken;
    session.username = s.username;
    session.authNone = s.authNone;
    session.role = s.role || "viewer";
    // role-aware: the body's class hides what the role may not do (app.css: [data-needs], el()'s `needs` in ui.js)
    document.body.classList.add("role-" + session.role);
    clear($("#who"), s.username ? "Signed in as " + s.username : (s.authNone ? "authentication off" : ""));
  } catch (e) {
    return; // api() already sent the browser to the login page
  }
  setRenderer(route);
  window.addEventListener("hashchange", route);
  route();
}

// A module script runs once the page is parsed.
start();
