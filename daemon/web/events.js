// The audit trail (GET /api/v1/events): who did what to which plan or
// host, filterable by plan, host, type and time, paged by the API's
// cursor; new events of the same filter arrive on the live stream.

import { api, explain, serverTime } from "./api.js";
import { banner, fmtTime, h, mount } from "./dom.js";
import { EventStream } from "./stream.js";

const TYPES = ["", "api_action", "plan_status_changed", "plan_created", "run_transition", "run_step", "update_started",
  "update_completed", "update_failed", "maintenance_mode", "run_claimed", "run_reclaimed", "run_released"];

/** Who caused an event: the API actor, else the recorded user id. */
function actor(ev) {
  const d = ev.details || {};
  if (d.actor) return `${d.actor} (${d.role})`;
  if (ev.user_id) return `user ${String(ev.user_id).slice(0, 8)}`;
  return "firmflow";
}

/** One event as a list item (also used by the plan page's feed). */
export function eventRow(ev) {
  return h("li", { class: `ev sev-${ev.severity}`, dataset: { seq: ev.seq, type: ev.event_type } },
    h("time", { datetime: ev.created_at }, fmtTime(ev.created_at)),
    h("span", { class: "ev-type" }, ev.event_type),
    h("span", { class: "ev-actor" }, actor(ev)),
    h("span", { class: "ev-msg" }, ev.message));
}

export function eventsView(main, ctx, args) {
  const field = (name, attrs) => h("label", {}, name, h("input", { name, value: args.get(name) || "", ...attrs }));
  const type = h("select", { name: "type" }, TYPES.map((t) => h("option", { value: t, selected: t === (args.get("type") || "") }, t || "any type")));
  const list = h("ol", { class: "feed", id: "events-list" });
  const more = h("button", { class: "secondary", id: "more", hidden: true, onclick: () => page() }, "Load the next 500 (newer)");
  const form = h("form", {
    class: "filters",
    onsubmit: (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const el of form.elements) if (el.name && el.value) q.set(el.name, el.value);
      location.hash = `#/events?${q}`;
    },
  }, field("plan", { placeholder: "plan id" }), field("host", { placeholder: "host id" }), type,
    field("since", { placeholder: "since (RFC 3339)" }), h("button", { type: "submit" }, "Filter"));
  mount(main, h("section", { class: "card" }, h("div", { class: "card-head" }, h("h1", {}, "Events"), form), list, more));

  const filter = new URLSearchParams();
  for (const k of ["plan", "host", "type", "since", "until"]) if (args.get(k)) filter.set(k, args.get(k));
  let cursor = null;
  const seen = new Set();
  const add = (ev, newest) => {
    if (seen.has(ev.seq)) return;
    seen.add(ev.seq);
    // Newest at the top: the trail grows at the head.
    if (newest) list.prepend(eventRow(ev));
    else list.append(eventRow(ev));
  };
  // The API lists oldest first; the page shows newest first, so pages are
  // read from the oldest and each page is inserted above the previous one.
  async function page() {
    try {
      const q = new URLSearchParams(filter);
      q.set("limit", "500");
      if (cursor) q.set("cursor", cursor);
      const r = await api(`/events?${q}`);
      r.items.forEach((ev) => add(ev, true));
      cursor = r.next_cursor;
      more.hidden = !cursor;
      if (!r.items.length && !list.children.length) list.append(h("li", { class: "muted" }, "No event matches."));
    } catch (e) {
      if (e.status === 401) return ctx.onAuthLost();
      banner(explain(e, "read the events"));
    }
  }
  const startedAt = serverTime(5);
  page();
  const q = filter.get("plan") ? `?plan=${encodeURIComponent(filter.get("plan"))}&` : "?";
  const stream = new EventStream(`${q}since=${encodeURIComponent(startedAt)}`, (ev) => {
    if (filter.get("host") && ev.host_id !== filter.get("host")) return;
    if (filter.get("type") && ev.event_type !== filter.get("type")) return;
    // Only once the pages reached the present: else the page read adds it.
    if (!cursor) add(ev, true);
  }, (st, d) => {
    if (st === "failed" && d && d.status === 401) ctx.onAuthLost();
  }).start();
  return { stop: () => stream.stop() };
}
