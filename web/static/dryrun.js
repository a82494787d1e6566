// The answer of a dry run (POST /resolve/dry-run, campaign preview): who would install what.
import { el, clear, table, pkgText, vinLink } from "./ui.js";
import { api, showError } from "./api.js";

export async function dryRun(box, req) {
  try {
    const r = await api("POST", "/resolve/dry-run", req);
    clear(box, renderDryRun(r));
  } catch (e) { showError(box, e); }
}

export function renderDryRun(r) {
  return [
    el("p", { class: "counts" },
      el("strong", { id: "match-count" }, String(r.matched)), " vehicle" + (r.matched === 1 ? "" : "s") + " would install it",
      " · ", el("span", { id: "already-count" }, String(r.alreadyInstalled)), " already have it",
      " · ", String(r.unresolvedCount ?? (r.unresolved || []).length), " unresolved",
      " · of ", String(r.totalVehicles), " vehicles (", String(r.elapsedMs), " ms)"),
    table(["VIN", "Would install, in order"], (r.sample || []).map((s) => [vinLink(s.vin), s.install.map(pkgText).join(" → ")]), "No resolvable vehicle matches."),
    (r.unresolvedByReason || []).length ? el("details", {}, el("summary", {}, "Unresolved vehicles, by reason"),
      table(["Why", "Vehicles", "First VINs"], r.unresolvedByReason.map((g) =>
        [g.reason, String(g.vehicles), el("span", {}, ...g.sample.flatMap((v, i) => i ? [" ", vinLink(v)] : [vinLink(v)]))]))) : null,
  ];
}
