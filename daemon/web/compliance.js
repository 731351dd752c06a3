// Compliance: per host and component, the installed version against the
// catalog's (POST /api/v1/compliance reads every BMC asked for and changes
// nothing; it needs role operator). One row per component, filterable,
// in the same virtualised table as the plan's hosts.

import { api, explain } from "./api.js";
import { h, mount } from "./dom.js";
import { VirtualTable } from "./table.js";

const ACTIONS = ["all", "upgrade", "downgrade", "same", "incomparable", "not_in_catalog", "error"];

export function complianceView(main, ctx, args) {
  const tag = h("input", { id: "compliance-tag", placeholder: "only hosts with tag (optional)", value: args.get("tag") || "" });
  const text = h("input", { type: "search", id: "compliance-filter", placeholder: "filter host or component…", oninput: () => refilter() });
  const action = h("select", { id: "compliance-action", onchange: () => refilter() }, ACTIONS.map((a) => h("option", { value: a }, a)));
  const outdated = h("input", { type: "checkbox", id: "compliance-outdated", onchange: () => refilter() });
  const summary = h("p", { class: "muted", id: "compliance-summary" },
    ctx.me.can_operate ? "Reads each host's BMC inventory and compares it with the catalog; changes nothing." : "Checking compliance reads the BMCs and needs role operator.");
  const button = h("button", { id: "compliance-run", onclick: () => run() }, "Check compliance");
  let all = [];
  const table = new VirtualTable({
    rowKey: (r) => `${r.host}/${r.component}`,
    rowClass: (r) => `action-${r.action}`,
    empty: "Nothing checked yet.",
    columns: [
      { key: "host", title: "Host", width: "minmax(150px, 1.2fr)", cell: (r) => r.host },
      { key: "component", title: "Component", width: "minmax(160px, 1.6fr)", cell: (r) => r.component },
      { key: "installed", title: "Installed", width: "minmax(90px, 0.7fr)", cell: (r) => r.installed },
      { key: "target", title: "Catalog", width: "minmax(90px, 0.7fr)", cell: (r) => r.target },
      { key: "action", title: "Verdict", width: "120px", cell: (r) => ({ text: r.action.replaceAll("_", " "), cls: `pill ${r.action}` }) },
      { key: "install", title: "Would install", width: "112px", cell: (r) => (r.will_install ? "yes" : "") },
      { key: "criticality", title: "Criticality", width: "120px", cell: (r) => r.criticality || "" },
    ],
  });
  mount(main, h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h1", {}, "Compliance"), h("div", { class: "filters" }, tag, button)),
    summary,
    h("div", { class: "filters" }, text, action, h("label", {}, outdated, " only what needs an update")),
    table.el));

  function refilter() {
    const q = text.value.trim().toLowerCase();
    const a = action.value;
    table.setRows(all.filter((r) =>
      (a === "all" || r.action === a)
      && (!outdated.checked || r.action === "upgrade" || r.action === "error")
      && (!q || r.host.toLowerCase().includes(q) || r.component.toLowerCase().includes(q))));
  }

  async function run() {
    button.disabled = true;
    summary.textContent = "Reading the BMCs…";
    try {
      const body = tag.value.trim() ? { tag: tag.value.trim() } : {};
      const r = await api("/compliance", { method: "POST", body });
      all = [];
      let hostsOut = 0;
      for (const hst of r.hosts) {
        if (hst.error) {
          all.push({ host: hst.host, component: "(host)", installed: "", target: "", action: "error", will_install: false, criticality: hst.error });
          continue;
        }
        if (hst.compliance.summary.upgrade > 0) hostsOut += 1;
        for (const c of hst.compliance.components) {
          all.push({ host: hst.host, component: c.name, installed: c.installed, target: c.target || "", action: c.action, will_install: c.will_install, criticality: c.criticality });
        }
      }
      summary.textContent = `${r.hosts.length} host(s) against ${r.catalog}: ${hostsOut} need an update, ${r.hosts.filter((x) => x.error).length} could not be read.`;
      refilter();
    } catch (e) {
      if (e.status === 401) return ctx.onAuthLost();
      summary.textContent = explain(e, "check compliance");
      summary.className = "form-error";
    } finally {
      button.disabled = false;
    }
  }
  return { stop() {} };
}
