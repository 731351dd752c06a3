// The plans list: state, progress, hosts done / running / failed / pending
// and ETA per plan, kept current by the live stream (a plan event makes
// the list read again, at most one read at a time). Operators also get a
// form to create a plan from its JSON (the API's errors shown as they are).

import { api, explain, serverTime } from "./api.js";
import { banner, fmtEta, fmtTime, h, mount } from "./dom.js";
import { EventStream } from "./stream.js";

export const PLAN_TEMPLATE = {
  name: "BIOS and iDRAC, rolling",
  targets: { all: true },
  approval_required: true,
  policy: {
    updateMode: "LATEST_FROM_CATALOG",
    maxConcurrent: 4,
    minHostsOnline: 1,
    requireMaintenanceMode: true,
    allowDowntime: false,
    rollbackOnFailure: true,
    preflightChecks: ["connectivity", "compatibility", "cluster_health"],
    postUpdateValidation: ["firmware_version", "system_health"],
  },
};

/** Progress bar: done (green), failed (red), running (blue) of total. */
export function progressBar(counts, total) {
  const pct = (n) => `${total ? (100 * n) / total : 0}%`;
  const bad = counts.failed + counts.needs_attention + counts.cancelled;
  const seg = (cls, n) => {
    const s = h("span", { class: `seg ${cls}` });
    s.style.width = pct(n);
    return s;
  };
  return h("div", { class: "bar", title: `${counts.completed} done, ${bad} failed, ${counts.running} running of ${total}` },
    seg("ok", counts.completed), seg("bad", bad), seg("run", counts.running + counts.retrying));
}

function row(p) {
  const c = p.counts;
  const total = p.progress.total;
  const failed = c.failed + c.needs_attention;
  return h(
    "tr",
    { class: `plan-row status-${p.status}`, dataset: { plan: p.id }, onclick: () => (location.hash = `#/plans/${p.id}`) },
    h("td", {}, h("a", { href: `#/plans/${p.id}`, class: "plan-name" }, p.name)),
    h("td", {}, h("span", { class: `pill ${p.status}` }, p.status)),
    h("td", { class: "progress-cell" }, progressBar(c, total), h("span", { class: "pct" }, `${p.progress.percent}%`)),
    h("td", { class: "num" }, `${c.completed}`),
    h("td", { class: "num" }, `${c.running + c.retrying}`),
    h("td", { class: `num ${failed ? "bad-text" : ""}` }, `${failed}`),
    h("td", { class: "num" }, `${c.pending}`),
    h("td", {}, p.status === "running" || p.status === "paused" ? fmtEta(p.progress.eta) : ""),
    h("td", { class: "muted" }, fmtTime(p.created_at)),
  );
}

export function plansView(main, ctx) {
  const tbody = h("tbody", { id: "plans-body" });
  const status = h("span", { class: "live", id: "live" }, "");
  const form = ctx.me.can_operate ? newPlanForm() : null;
  mount(
    main,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h1", {}, "Plans"), status),
      h("table", { class: "plans" },
        h("thead", {}, h("tr", {}, ["Plan", "State", "Progress", "Done", "Running", "Failed", "Pending", "ETA", "Created"].map((t) => h("th", {}, t)))),
        tbody)),
    form,
  );
  let reading = false;
  let again = false;
  let stopped = false;
  async function load() {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      const page = await api("/plans?limit=200");
      if (stopped) return;
      mount(tbody, page.items.length ? page.items.map(row) : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No plans yet.")));
    } catch (e) {
      if (e.status === 401) return ctx.onAuthLost();
      banner(explain(e, "list the plans"));
    } finally {
      reading = false;
      if (again && !stopped) {
        again = false;
        setTimeout(load, 500);
      }
    }
  }
  load();
  const interesting = new Set(["plan_status_changed", "plan_created", "run_transition", "update_completed", "update_failed"]);
  const stream = new EventStream(`?since=${encodeURIComponent(serverTime(5))}`, (ev) => {
    if (interesting.has(ev.event_type)) load();
  }, (st, d) => {
    status.textContent = st === "live" ? "● live" : st === "retrying" ? "reconnecting…" : st === "failed" ? "stream refused" : "";
    status.className = `live ${st}`;
    if (st === "live" && d && d.reconnected) load();
    if (st === "failed" && d && d.status === 401) ctx.onAuthLost();
  }).start();
  return {
    stop() {
      stopped = true;
      stream.stop();
    },
  };
}

function newPlanForm() {
  const text = h("textarea", { id: "plan-json", rows: 14, spellcheck: "false" }, JSON.stringify(PLAN_TEMPLATE, null, 2));
  const err = h("p", { class: "form-error", id: "plan-error", role: "alert" });
  return h(
    "section",
    { class: "card" },
    h("details", {},
      h("summary", {}, "New plan (JSON, as for POST /api/v1/plans)"),
      h("form", {
        class: "new-plan",
        onsubmit: async (e) => {
          e.preventDefault();
          err.textContent = "";
          try {
            const created = await api("/plans", { method: "POST", body: text.value });
            location.hash = `#/plans/${created.plan.id}`;
          } catch (x) {
            err.textContent = explain(x, "create the plan");
          }
        },
      }, text, h("button", { type: "submit", id: "create-plan" }, "Create plan (draft)"), err)),
  );
}
