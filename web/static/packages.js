// Packages: the list with upload, and one package's page (binary, filters, dependencies, vehicles,
// queueing an update request, dry run).
import { el, append, clear, $, table, pkgText, pkgPath, pkgLink, vinLink, bytes, toast } from "./ui.js";
import { api, act, showError, session, toLogin } from "./api.js";
import { current, reload } from "./nav.js";
import { dryRun } from "./dryrun.js";

async function packages() {
  const view = $("#view");
  const q = el("input", { id: "package-regex", placeholder: "regex on name or version", size: 28 });
  const list = el("div", {});
  async function load() {
    const ok = current();
    try {
      const [pkgs, links] = await Promise.all([api("GET", "/packages" + (q.value ? "?regex=" + encodeURIComponent(q.value) : "")), api("GET", "/packages/filter")]);
      if (!ok()) return;
      const filtersOf = {};
      for (const l of links) (filtersOf[(l.packageName + " " + l.packageVersion).toLowerCase()] ||= []).push(l.filterName);
      const without = pkgs.filter((x) => !x.size).length;
      clear(list,
        without ? el("p", { class: "muted", id: "packages-no-binary" }, without + " of " + pkgs.length + " version" + (pkgs.length === 1 ? "" : "s") +
          " listed " + (without === 1 ? "has" : "have") + " no binary: " + (without === 1 ? "it" : "they") + " cannot be delivered to vehicles until one is uploaded.") : null,
        table(["Package", "Description", "Vendor", "Binary", "Filters"], pkgs.map((x) => [pkgLink(x.id), x.description, x.vendor,
          x.size ? bytes(x.size) : el("span", { class: "tag nobin", title: "This version cannot be delivered to vehicles until a binary is uploaded" }, "no binary"),
          (filtersOf[pkgText(x.id).toLowerCase()] || []).join(", ")]), "No packages."));
    } catch (e) { showError(list, e); }
  }

  const name = el("input", { id: "upload-name", placeholder: "name", required: true, size: 16 });
  const version = el("input", { id: "upload-version", placeholder: "1.0.0", required: true, size: 10 });
  const desc = el("input", { id: "upload-description", placeholder: "description", size: 24 });
  const vendor = el("input", { id: "upload-vendor", placeholder: "vendor", size: 12 });
  const file = el("input", { id: "upload-file", type: "file" });
  const bar = el("progress", { id: "upload-progress", max: 100, value: 0, hidden: true });
  const status = el("span", { id: "upload-status", class: "muted" });
  const form = el("form", { class: "card", needs: "operator", onsubmit: (ev) => {
    ev.preventDefault();
    const id = { name: name.value.trim(), version: version.value.trim() };
    if (!file.files.length) {
      act(() => api("POST", "/packages", { id, description: desc.value, vendor: vendor.value }), "Package " + pkgText(id) + " created").then((r) => r && load());
      return;
    }
    upload(id, file.files[0], { description: desc.value, vendor: vendor.value }, bar, status).then((done) => { if (done) { form.reset(); load(); } });
  } },
  el("h2", {}, "New package"),
  el("div", { class: "bar" }, name, version, desc, vendor, file, el("button", { type: "submit", class: "primary", id: "upload-submit" }, "Create / upload")),
  el("div", { class: "bar" }, bar, status),
  el("p", { class: "muted" }, "Without a file only the metadata is stored; a binary can be uploaded later under the same name and version."));

  append(view, el("h1", {}, "Packages"), form,
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Filter")),
    list);
  load();
}

// vinPages is the paginated list of the VINs that have a package installed (GET path with limit and
// offset, X-Total-Count): {box}, loading its first page at once.
function vinPages(path, ok) {
  const limit = 100;
  let offset = 0;
  const box = el("div", { id: "package-vins" });
  async function load() {
    try {
      const { data: vins, total } = await api("GET", path + "?limit=" + limit + "&offset=" + offset, undefined, { withTotal: true });
      if (!ok()) return;
      clear(box, el("h2", {}, "Vehicles with it installed (", el("span", { id: "package-vins-total" }, String(total)), ")"),
        vins.length ? el("div", { class: "scroll" }, el("ul", { class: "vins" }, vins.map((v) => el("li", {}, vinLink(v))))) : el("p", { class: "muted" }, "None."),
        total > limit ? el("div", { class: "pager" },
          el("button", { id: "package-vins-prev", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - limit); load(); } }, "‹ Previous"),
          el("span", { id: "package-vins-range" }, (offset + 1) + "–" + (offset + vins.length) + " of " + total),
          el("button", { id: "package-vins-next", disabled: offset + limit >= total, onclick: () => { offset += limit; load(); } }, "Next ›")) : null);
    } catch (e) { showError(box, e); }
  }
  load();
  return { box };
}

// upload sends a binary with XHR so the upload progress can be shown (fetch has no upload progress).
export function upload(id, f, meta, bar, status) {
  return new Promise((resolve) => {
    const qs = new URLSearchParams();
    if (meta.description) qs.set("description", meta.description);
    if (meta.vendor) qs.set("vendor", meta.vendor);
    const fd = new FormData();
    fd.append("file", f);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/api/v1/packages/" + pkgPath(id) + (qs.toString() ? "?" + qs : ""));
    if (session.csrf) xhr.setRequestHeader("X-CSRF-Token", session.csrf);
    bar.hidden = false;
    bar.value = 0;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        clear(status, bytes(e.loaded) + " of " + bytes(e.total));
      }
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        clear(status, "Uploaded " + pkgText(id) + " (" + bytes(f.size) + ")");
        toast("Uploaded " + pkgText(id), "ok");
        resolve(true);
      } else {
        if (xhr.status === 401) toLogin();
        let msg = "HTTP " + xhr.status;
        try { msg = JSON.parse(xhr.responseText).description || msg; } catch (e) { /* not JSON */ }
        clear(status, el("span", { class: "error" }, msg));
        resolve(false);
      }
    });
    xhr.addEventListener("error", () => { clear(status, el("span", { class: "error" }, "Upload failed: network error")); resolve(false); });
    xhr.send(fd);
  });
}

async function packageDetail(name, version) {
  const view = $("#view");
  const ok = current();
  const id = { name, version };
  const p = "/packages/" + pkgPath(id);
  const [pkg, deps, pfilters, allFilters, allPkgs] = await Promise.all([
    api("GET", p), api("GET", p + "/dependencies"), api("GET", p + "/filter"),
    api("GET", "/filters"), api("GET", "/packages")]);
  if (!ok()) return;
  const again = () => { if (ok()) reload(); };

  const fSel = el("select", { id: "associate-filter" }, allFilters.map((f) => el("option", { value: f.name }, f.name)));
  const depSel = el("select", { id: "dependency-package" }, allPkgs.filter((x) => pkgText(x.id) !== pkgText(id)).map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  const rangeName = el("input", { placeholder: "package name", size: 14 });
  const range = el("input", { placeholder: ">=1.2.0 <2.0.0", size: 16 });
  const upFile = el("input", { type: "file", id: "reupload-file" });
  const bar = el("progress", { max: 100, value: 0, hidden: true });
  const status = el("span", { class: "muted" });
  const dry = el("div", { id: "package-dry-run" });
  const qPrio = el("input", { type: "number", min: 1, max: 1000, value: 10, size: 4, id: "queue-priority" });
  const qFrom = el("input", { type: "datetime-local", id: "queue-from" });
  const qUntil = el("input", { type: "datetime-local", id: "queue-until" });
  const qDesc = el("input", { placeholder: "description shown to the driver", size: 30, id: "queue-description" });
  const qConfirm = el("input", { type: "checkbox", id: "queue-confirm" });
  const vinsCard = vinPages(p + "/vehicles", ok);

  append(view,
    el("p", {}, el("a", { href: "#/packages" }, "‹ Packages")),
    el("h1", {}, pkgText(id)),
    el("p", { class: "muted" }, pkg.description || "", pkg.vendor ? " · " + pkg.vendor : ""),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "Binary"),
        pkg.size ? el("p", {}, bytes(pkg.size), " · sha256 ", el("code", {}, pkg.checkSum), " · ",
          el("a", { href: "/api/v1" + p + "/download" }, "download"))
          : el("p", { class: "warn", id: "package-no-binary" }, "No binary uploaded: this version cannot be delivered to vehicles. Upload one below before queuing it or launching a campaign with it."),
        el("form", { class: "bar", needs: "operator", onsubmit: (ev) => {
          ev.preventDefault();
          if (upFile.files.length) upload(id, upFile.files[0], {}, bar, status).then((d) => d && again());
        } }, upFile, el("button", { type: "submit" }, "Upload binary")),
        el("div", { class: "bar" }, bar, status)),
      el("section", { class: "card" },
        el("h2", {}, "Filters"),
        el("p", { class: "muted" }, "A vehicle gets this package when it passes every filter below."),
        table(["Filter", "Expression", ""], pfilters.map((f) => [el("a", { href: "#/filters/" + encodeURIComponent(f.name) }, f.name), el("code", {}, f.expression),
          el("button", { class: "small", needs: "operator", onclick: async () => { if (await act(() => api("DELETE", p + "/filter/" + encodeURIComponent(f.name)), "Unlinked " + f.name)) again(); } }, "Unlink")]), "No filters: the package cannot be queued."),
        el("div", { class: "bar", needs: "operator" }, fSel, el("button", { id: "associate-submit", onclick: async () => {
          if (fSel.value && await act(() => api("PUT", p + "/filter/" + encodeURIComponent(fSel.value)), "Linked " + fSel.value)) again();
        } }, "Link filter"))),
      el("section", { class: "card" },
        el("h2", {}, "Dependencies"),
        table(["Depends on", ""], deps.map((d) => [pkgLink(d.dependency),
          el("button", { class: "small", needs: "operator", onclick: async () => { if (await act(() => api("DELETE", p + "/dependencies/" + pkgPath(d.dependency)), "Removed")) again(); } }, "Remove")]), "No dependencies."),
        el("div", { class: "bar", needs: "operator" }, depSel, el("button", { onclick: async () => {
          if (!depSel.value) return;
          const d = JSON.parse(depSel.value);
          if (await act(() => api("PUT", p + "/dependencies/" + pkgPath(d)), "Depends on " + pkgText(d))) again();
        } }, "Add exact dependency")),
        el("div", { class: "bar", needs: "operator" }, rangeName, range, el("button", { onclick: async () => {
          if (rangeName.value && await act(() => api("PUT", p + "/dependencies/" + encodeURIComponent(rangeName.value), { range: range.value }), "Range dependency added")) again();
        } }, "Add range dependency"))),
      el("section", { class: "card" },
        vinsCard.box)),
    el("section", { class: "card", needs: "operator" },
      el("h2", {}, "Queue it now"),
      pkg.size ? null : el("p", { class: "warn" }, "This version has no binary: vehicles would get an update they cannot download."),
      el("p", { class: "muted" }, "Every vehicle its filters select gets an update (a vehicle that has one pending or in flight for this version is skipped). For a named, scheduled rollout create a campaign."),
      el("form", { class: "bar", onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { packageId: id, priority: Number(qPrio.value), description: qDesc.value || undefined, requestConfirmation: qConfirm.checked };
        if (qFrom.value || qUntil.value) {
          if (!qFrom.value || !qUntil.value) { toast("Give both ends of the validity period", "err"); return; }
          body.periodOfValidity = new Date(qFrom.value).toISOString() + "/" + new Date(qUntil.value).toISOString();
        }
        const r = await act(() => api("POST", "/update_requests", body));
        if (r && r.id) {
          toast(r.vehicles + " vehicle" + (r.vehicles === 1 ? "" : "s") + " queued, " + (r.skipped || 0) + " skipped", "ok");
          location.hash = "#/update-requests/" + encodeURIComponent(r.id);
        }
      } },
      el("label", {}, "Priority ", qPrio), el("label", {}, "Valid from ", qFrom), el("label", {}, "until ", qUntil), qDesc,
      el("label", {}, qConfirm, " ask the driver"), el("button", { type: "submit", class: "primary", id: "queue-submit" }, "Queue"))),
    el("section", { class: "card" },
      el("h2", {}, "Who would get it"),
      el("div", { class: "bar" },
        el("button", { onclick: () => dryRun(dry, { package: id, sample: 20 }) }, "Dry run with its filters"),
        el("button", { class: "danger", needs: "operator", onclick: async () => {
          if (confirm("Delete " + pkgText(id) + "?") && await act(() => api("DELETE", p), "Deleted")) location.hash = "#/packages";
        } }, "Delete package")),
      dry));
}


export const routes = [
  [/^#\/packages\/([^/]+)\/([^/]+)$/, packageDetail],
  [/^#\/packages$/, packages],
];
