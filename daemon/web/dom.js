// Small DOM helpers shared by the views: element building without
// innerHTML (no markup from data is ever parsed), time formatting, the
// error banner and the confirmation dialog.

/** Builds an element: h("td", {class: "x", onclick: f}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
}

/** "12:03:04" today, else "2026-01-02 12:03". */
export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.toISOString().slice(0, 10)} ${hm.slice(0, 5)}`;
}

/** Seconds as "1h 02m", "3m 05s", "12s". */
export function fmtDuration(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs) || secs < 0) return "";
  const s = Math.round(secs);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh > 0) return `${hh}h ${String(mm).padStart(2, "0")}m`;
  if (mm > 0) return `${mm}m ${String(ss).padStart(2, "0")}s`;
  return `${ss}s`;
}

/** Time until `iso`, for an ETA. */
export function fmtEta(iso) {
  if (!iso) return "—";
  const secs = (new Date(iso).getTime() - Date.now()) / 1000;
  if (!Number.isFinite(secs)) return "—";
  if (secs <= 0) return "any moment";
  return `in ${fmtDuration(secs)} (${fmtTime(iso)})`;
}

let bannerTimer = null;

/** Shows a message for the operator at the top of the page. */
export function banner(text, kind = "error") {
  const el = document.getElementById("banner");
  clearTimeout(bannerTimer);
  if (!text) {
    el.hidden = true;
    return;
  }
  el.className = `banner ${kind}`;
  mount(el, h("span", {}, text), h("button", { class: "close", "aria-label": "Dismiss", onclick: () => banner(null) }, "×"));
  el.hidden = false;
  // Good news fades; errors stay until read and dismissed.
  if (kind === "ok") bannerTimer = setTimeout(() => banner(null), 4000);
}

/**
 * Asks the operator to confirm a disruptive action. Resolves true only when
 * the confirm button (never Enter on a stray field) was pressed.
 */
export function confirmDialog(title, body, action) {
  const dlg = document.getElementById("confirm");
  mount(
    dlg,
    h(
      "form",
      { method: "dialog" },
      h("h2", {}, title),
      h("p", {}, body),
      h(
        "menu",
        {},
        h("button", { value: "cancel", class: "secondary", id: "confirm-no" }, "Keep as is"),
        h("button", { value: "ok", class: "danger", id: "confirm-yes" }, action),
      ),
    ),
  );
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
    dlg.querySelector("#confirm-no").focus();
  });
}
