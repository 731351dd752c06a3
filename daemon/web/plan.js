// One plan, live: status, progress and ETA, the policy, a strip per
// vSphere cluster, the dry run's waves, a row per host and the plan's
// audit trail, with the actions the caller's role allows.
//
// Updates come from the live stream only: an event of this plan asks for
// the host rows changed since the last read (GET /plans/{id}?since=), one
// read at a time and at most one per READ_GAP_MS, so a burst of events
// costs a few reads, not one per event. Rendering is batched into one
// animation frame; the host table is virtualised (see table.js).

import { api, explain } from "./api.js";
import { banner, confirmDialog, fmtDuration, fmtEta, fmtTime, h, mount } from "./dom.js";
import { progressBar } from "./plans.js";
import { EventStream } from "./stream.js";
import { VirtualTable } from "./table.js";
import { eventRow } from "./events.js";

const READ_GAP_MS = 250;
const FEED_MAX = 200;

const ACTIONS = [
  { name: "approve", label: "Approve", when: (p) => p.status === "draft" && p.approval_required },
  { name: "start", label: "Start", when: (p) => p.status === "approved" || (p.status === "draft" && !p.approval_required),
    confirm: (p, n) => [`Start “${p.name}”?`, `firmflow will begin updating firmware on ${n} host(s), up to ${p.policy.maxConcurrent} at a time. Hosts may reboot and enter maintenance mode.`, "Start the plan"] },
  { name: "pause", label: "Pause", when: (p) => p.status === "running" },
  { name: "resume", label: "Resume", when: (p) => p.status === "paused" },
  { name: "cancel", label: "Cancel", danger: true, when: (p) => ["draft", "approved", "running", "paused"].includes(p.status),
    confirm: (p) => [`Cancel “${p.name}”?`, "No new host will start; hosts in flight are brought to a safe point, leave maintenance mode and end cancelled. This cannot be undone.", "Cancel the plan"] },
];

const STATES = ["all", "running", "retrying", "pending", "completed", "failed", "needs_attention", "cancelled"];
const STATE_ORDER = { failed: 0, needs_attention: 1, running: 2, retrying: 3, pending: 4, cancelled: 5, completed: 6 };

function runDuration(r) {
  if (!r.started_at) return null;
  const end = r.completed_at ? new Date(r.completed_at) : new Date();
  return (end - new Date(r.started_at)) / 1000;
}

// `attempts` counts failures consumed: a run still going (or one that
// succeeded) is on the attempt after them; a failed run ended on the last.
function attemptOf(r) {
  const n = r.state === "failed" || r.state === "needs_attention" ? r.attempts : r.attempts + 1;
  return Math.max(1, Math.min(n, r.max_attempts));
}

function policyList(p) {
  const pol = p.policy;
  const w = p.maintenance_window;
  const approval = !p.approval_required ? "not required" : p.approved_by ? "approved" : "required, not yet given";
  const item = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  return h("dl", { class: "policy", id: "policy" },
    item("maxConcurrent", pol.maxConcurrent),
    item("minHostsOnline (per cluster)", pol.minHostsOnline),
    item("Window", w ? `${fmtTime(w.start)} – ${fmtTime(w.end)}` : "none (any time)"),
    item("Approval", approval),
    item("Maintenance mode", pol.requireMaintenanceMode ? "required" : "not used"),
    item("Downtime allowed", pol.allowDowntime ? "yes" : "no"),
    item("Rollback on failure", pol.rollbackOnFailure ? "yes" : "no"),
    item("Mode", pol.updateMode + (pol.catalogUrl ? ` (${pol.catalogUrl})` : "")),
    item("Retries", pol.retry ? `${pol.retry.maxAttempts} attempts` : "default"));
}

function clusterStrip(c) {
  const short = c.online < c.min_hosts_online;
  const seg = (cls, n, label) => {
    const s = h("span", { class: `seg ${cls}`, title: `${n} ${label}` });
    s.style.width = `${c.members ? (100 * n) / c.members : 0}%`;
    return s;
  };
  const idle = Math.max(0, c.online - c.updating);
  return h("div", { class: `cluster ${short ? "short" : ""}`, dataset: { cluster: c.cluster } },
    h("div", { class: "cluster-name" }, c.cluster),
    h("div", { class: "bar" }, seg("ok", idle, "online"), seg("run", Math.min(c.updating, c.online), "updating, still online"), seg("mm", c.in_maintenance, "in maintenance")),
    h("div", { class: "cluster-figures" },
      `${c.online}/${c.members} online · ${c.in_maintenance} in maintenance · ${c.updating} updating · min ${c.min_hosts_online}`,
      short ? h("strong", { class: "bad-text" }, " below minimum") : ""));
}

export function planView(main, ctx, id) {
  const me = ctx.me;
  const rows = new Map(); // run_id -> host row
  const feed = [];
  const seen = new Set();
  let view = null;
  let since = null;
  let reading = false;
  let again = false;
  let lastRead = 0;
  let stopped = false;
  let frame = 0;
  let filtered = true;
  // Figures for BENCHMARKS.md (read by the browser test's bench).
  const stats = (window.firmflowStats = { t0: performance.now(), firstRender: null, reads: 0, rowUpdates: 0, events: 0, frames: 0 });

  const head = h("section", { class: "card plan-head" });
  const clustersEl = h("div", { class: "clusters", id: "clusters" });
  const wavesEl = h("div", { class: "waves", id: "waves" });
  const feedEl = h("ol", { class: "feed", id: "feed" });
  const detailEl = h("section", { class: "card host-detail", id: "host-detail", hidden: true });
  const filterText = h("input", { type: "search", id: "host-filter", placeholder: "filter hosts, phase, error…", oninput: () => refilter() });
  const filterState = h("select", { id: "state-filter", onchange: () => refilter() }, STATES.map((s) => h("option", { value: s }, s)));
  const shown = h("span", { class: "muted", id: "shown" });
  const table = new VirtualTable({
    rowKey: (r) => r.host || r.host_id,
    rowClass: (r) => `state-${r.state}`,
    onClick: (r) => showHost(r),
    empty: "No host matches.",
    columns: [
      { key: "host", title: "Host", width: "minmax(150px, 1.3fr)", cell: (r) => r.host || r.host_id },
      { key: "state", title: "State", width: "110px", cell: (r) => ({ text: r.state, cls: `pill ${r.state}` }) },
      { key: "phase", title: "Phase", width: "130px", cell: (r) => r.phase },
      { key: "component", title: "Component", width: "minmax(220px, 1.6fr)", cell: (r) => r.component ? `${r.component}${r.packages_total > 1 ? ` (${r.packages_done}/${r.packages_total})` : ""}` : "" },
      { key: "pct", title: "%", width: "60px", cell: (r) => ({ text: `${r.percentage}%`, cls: "num" }) },
      { key: "attempt", title: "Attempt", width: "74px", cell: (r) => ({ text: `${attemptOf(r)}/${r.max_attempts}`, cls: "num" }) },
      { key: "error", title: "Last error", width: "minmax(200px, 3fr)", cell: (r) => ({ text: r.last_error || "", cls: r.last_error ? "bad-text" : "" }) },
      { key: "duration", title: "Duration", width: "84px", cell: (r) => ({ text: fmtDuration(runDuration(r)), cls: "num" }) },
    ],
  });
  const hostsCard = h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h2", {}, "Hosts"), h("div", { class: "filters" }, filterText, filterState, shown)),
    table.el);
  mount(main,
    head,
    hostsCard,
    detailEl,
    h("div", { class: "grid2" },
      h("section", { class: "card" }, h("h2", {}, "Policy"), h("div", { id: "policy-box" })),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Waves (dry run)"), me.can_operate ? h("button", { id: "dry-run", class: "secondary", onclick: () => dryRun() }, "Compute waves") : ""), wavesEl)),
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Audit trail"), h("a", { href: `#/events?plan=${id}` }, "full trail and filters →")),
      feedEl));
  mount(wavesEl, h("p", { class: "muted" }, me.can_operate ? "Reads every target's BMC and simulates admission; changes nothing." : "The dry run needs role operator."));

  function refilter() {
    filtered = true;
    schedule();
  }

  function visibleRows() {
    const q = filterText.value.trim().toLowerCase();
    const st = filterState.value;
    const out = [];
    for (const r of rows.values()) {
      if (st !== "all" && r.state !== st) continue;
      if (q && ![r.host, r.phase, r.component, r.last_error, r.message].some((v) => v && String(v).toLowerCase().includes(q))) continue;
      out.push(r);
    }
    // Trouble first, then work in progress, then the rest; by name within.
    out.sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || String(a.host).localeCompare(String(b.host), undefined, { numeric: true }));
    return out;
  }

  function schedule() {
    if (frame || stopped) return;
    frame = requestAnimationFrame(render);
  }

  // The head is built once; each frame changes only what differs, so a
  // button is never replaced under the operator's pointer mid-click.
  const el = {
    name: h("h1", { id: "plan-name" }),
    actions: h("div", { class: "actions", id: "actions" }),
    status: h("span", { class: "pill big", id: "plan-status" }),
    bar: h("div"),
    figures: h("div", { class: "figures", id: "figures" }),
    live: h("span", { class: "live", id: "live" }),
    reason: h("p", { class: "reason", hidden: true }),
  };
  mount(head,
    h("div", { class: "card-head" }, h("div", {}, h("a", { href: "#/plans", class: "muted" }, "← plans"), el.name), el.actions),
    h("div", { class: "plan-status" }, el.status, h("div", { class: "plan-progress" }, el.bar, el.figures), el.live),
    el.reason,
    clustersEl);
  const last = { actions: null, policy: null, clusters: null };
  const setText = (node, t) => {
    if (node.textContent !== t) node.textContent = t;
  };

  function render() {
    frame = 0;
    if (!view) return;
    stats.frames += 1;
    renderHead();
    const policy = JSON.stringify([view.plan.policy, view.plan.maintenance_window, view.plan.approved_by]);
    if (policy !== last.policy) {
      last.policy = policy;
      mount(document.getElementById("policy-box"), policyList(view.plan));
    }
    const clusters = JSON.stringify(view.clusters);
    if (clusters !== last.clusters) {
      last.clusters = clusters;
      mount(clustersEl, view.clusters.map(clusterStrip));
    }
    if (filtered) {
      const vis = visibleRows();
      table.setRows(vis);
      shown.textContent = `${vis.length} of ${rows.size}`;
      filtered = false;
    } else {
      table.invalidate();
    }
    if (stats.firstRender === null) stats.firstRender = performance.now() - stats.t0;
  }

  function renderHead() {
    const p = view.plan;
    const c = view.counts;
    const pr = view.progress;
    setText(el.name, p.name);
    setText(el.status, p.status);
    el.status.className = `pill big ${p.status}`;
    const allowed = me.can_operate ? ACTIONS.filter((a) => a.when(p)) : [];
    const key = allowed.map((a) => a.name).join(",");
    if (key !== last.actions) {
      last.actions = key;
      mount(el.actions, allowed.map((a) => h("button", { id: `action-${a.name}`, class: a.danger ? "danger" : a.confirm ? "primary" : "secondary", onclick: () => act(a) }, a.label)));
    }
    mount(el.bar, progressBar(c, pr.total));
    setText(el.figures, `${pr.done} of ${pr.total} hosts done (${pr.percent}%) · ${c.running + c.retrying} running · ${c.failed + c.needs_attention} failed · ${c.pending} pending`
      + (p.status === "running" || p.status === "paused" ? ` · ETA ${fmtEta(pr.eta)}` : ""));
    el.live.className = `live ${streamState}`;
    setText(el.live, streamLabel());
    el.reason.hidden = !p.status_reason;
    setText(el.reason, p.status_reason || "");
  }

  let streamState = "connecting";
  const streamLabel = () => ({ live: "● live", connecting: "connecting…", retrying: "reconnecting…", failed: "stream refused", stopped: "" })[streamState] || "";

  function apply(v) {
    if (!v.partial) rows.clear();
    for (const r of v.hosts) {
      const cur = rows.get(r.run_id);
      if (cur) Object.assign(cur, r);
      else rows.set(r.run_id, r);
      stats.rowUpdates += 1;
    }
    view = { plan: v.plan, counts: v.counts, progress: v.progress, clusters: v.clusters };
    since = v.next_since;
    filtered = true;
    schedule();
  }

  async function read(full = false) {
    if (reading) {
      again = true;
      return;
    }
    const wait = lastRead + READ_GAP_MS - performance.now();
    if (wait > 0 && !full) {
      reading = true;
      await new Promise((r) => setTimeout(r, wait));
      reading = false;
      if (stopped) return;
    }
    reading = true;
    again = false;
    lastRead = performance.now();
    try {
      const q = since && !full ? `?since=${encodeURIComponent(since)}` : "";
      const v = await api(`/plans/${id}${q}`);
      stats.reads += 1;
      if (!stopped) apply(v);
    } catch (e) {
      if (e.status === 401) return ctx.onAuthLost();
      banner(explain(e, "read the plan"));
    } finally {
      reading = false;
      if (again && !stopped) read();
    }
  }

  async function act(a) {
    const p = view.plan;
    if (a.confirm) {
      const [title, body, label] = a.confirm(p, rows.size);
      if (!(await confirmDialog(title, body, label))) return;
    }
    try {
      const v = await api(`/plans/${id}/${a.name}`, { method: "POST", body: {} });
      apply(v);
      banner(`${a.label}: done. The plan is ${v.plan.status}.`, "ok");
    } catch (e) {
      if (e.status === 401) return ctx.onAuthLost();
      banner(explain(e, `${a.name} the plan`));
    }
  }

  async function dryRun() {
    mount(wavesEl, h("p", { class: "muted" }, "Reading the BMCs…"));
    try {
      const { dry_run: d, unreadable } = await api(`/plans/${id}/dry-run`, { method: "POST", body: {} });
      const names = (hs) => (hs.length > 12 ? `${hs.slice(0, 12).join(", ")} and ${hs.length - 12} more` : hs.join(", "));
      mount(wavesEl,
        h("p", {}, `${d.waves.length} wave(s), ${d.packages} package(s), about ${fmtDuration(d.estimated_duration_secs)}; ends near ${fmtTime(d.ends_at)}.`),
        h("ol", { class: "wave-list" }, d.waves.map((w) => h("li", {}, h("strong", {}, `Wave ${w.index}`), ` at +${fmtDuration(w.start_offset_secs) || "0s"} · ${w.hosts.length} host(s): `, names(w.hosts)))),
        d.blocked.length ? h("p", { class: "bad-text" }, `${d.blocked.length} host(s) would never start: ${d.blocked.map((b) => `${b.host}: ${b.reason}`).join("; ")}`) : "",
        unreadable.length ? h("p", { class: "bad-text" }, `Unreadable: ${unreadable.map((u) => `${u.host}: ${u.error}`).join("; ")}`) : "");
    } catch (e) {
      mount(wavesEl, h("p", { class: "form-error" }, explain(e, "compute the waves")));
    }
  }

  async function showHost(r) {
    detailEl.hidden = false;
    mount(detailEl, h("h2", {}, `Host ${r.host}`), h("p", { class: "muted" }, "Reading…"));
    try {
      const [run, evs] = await Promise.all([
        api(`/runs/${r.run_id}`),
        api(`/events?plan=${id}&host=${r.host_id}&limit=200`),
      ]);
      const pkgs = (run.ctx.checkpoint && run.ctx.checkpoint.packages) || [];
      const errors = (run.ctx.results && run.ctx.results.errors) || [];
      mount(detailEl,
        h("div", { class: "card-head" }, h("h2", {}, `Host ${r.host}`), h("button", { class: "secondary", onclick: () => (detailEl.hidden = true) }, "Close")),
        h("p", {}, `${run.state} · ${run.ctx.progress.phase} · ${run.ctx.progress.message || ""}`),
        pkgs.length ? h("table", { class: "mini" }, h("tr", {}, h("th", {}, "Component"), h("th", {}, "From"), h("th", {}, "Target"), h("th", {}, "Status")),
          pkgs.map((p) => h("tr", {}, h("td", {}, p.package.name), h("td", {}, p.package.installed_version || ""), h("td", {}, p.package.target_version), h("td", {}, p.status + (p.reason ? `: ${p.reason}` : ""))))) : "",
        errors.length ? h("ul", { class: "errors" }, errors.map((e) => h("li", { class: "bad-text" }, `${fmtTime(e.at)} ${e.phase} (${e.class}): ${e.message}`))) : "",
        h("h3", {}, "Events"),
        h("ol", { class: "feed" }, evs.items.slice().reverse().map(eventRow)),
        h("a", { href: `#/events?host=${r.host_id}` }, "all events of this host →"));
    } catch (e) {
      mount(detailEl, h("p", { class: "form-error" }, explain(e, "read the host's run")));
    }
  }

  let feedFrame = 0;
  function pushFeed(ev) {
    if (seen.has(ev.seq)) return;
    seen.add(ev.seq);
    feed.push(ev);
    if (feed.length > FEED_MAX) feed.splice(0, feed.length - FEED_MAX);
    if (!feedFrame) feedFrame = requestAnimationFrame(() => {
      feedFrame = 0;
      mount(feedEl, feed.slice().reverse().map(eventRow));
    });
  }

  let stream = null;
  (async () => {
    await read(true);
    if (stopped || !view) return;
    // The trail so far (newest last), then the stream from the snapshot on.
    try {
      const evs = await api(`/events?plan=${id}&type=api_action&limit=100`);
      evs.items.forEach(pushFeed);
    } catch {
      // The live feed still fills; the banner already tells of read failures.
    }
    stream = new EventStream(`?plan=${id}&since=${encodeURIComponent(since)}`, (ev) => {
      stats.events += 1;
      pushFeed(ev);
      read();
    }, (st, d) => {
      streamState = st;
      const live = document.getElementById("live");
      if (live) {
        live.className = `live ${st}`;
        live.textContent = streamLabel();
      }
      // Rows may have changed without an event while the stream was down.
      if (st === "live" && d && d.reconnected) read();
      if (st === "failed" && d && d.status === 401) ctx.onAuthLost();
    }).start();
  })();
  // Running rows' durations grow: redraw the visible rows each second (no request).
  const ticker = setInterval(() => table.invalidate(), 1000);

  return {
    stop() {
      stopped = true;
      clearInterval(ticker);
      if (stream) stream.stop();
    },
  };
}
