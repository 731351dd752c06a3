// firmflow's web view: sign-in, who is signed in (GET /api/v1/me), and the
// hash routes #/plans, #/plans/<id>, #/compliance, #/events. Each view is
// a function (main, me, args) returning {stop()}, called when the route
// changes so its live stream closes.

import { api, explain, setToken, token } from "./api.js";
import { banner, h, mount } from "./dom.js";
import { plansView } from "./plans.js";
import { planView } from "./plan.js";
import { complianceView } from "./compliance.js";
import { eventsView } from "./events.js";

const state = { me: null, view: null };
const main = () => document.getElementById("main");

async function whoAmI() {
  try {
    state.me = await api("/me");
    return true;
  } catch (e) {
    state.me = null;
    if (e.status === 401) return false;
    throw e;
  }
}

function showWho() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  const nav = document.getElementById("nav");
  if (!state.me) {
    mount(who);
    out.hidden = true;
    nav.hidden = true;
    return;
  }
  const dc = state.me.datacenter ? ` · datacenter ${state.me.datacenter}` : "";
  mount(who, h("span", { class: "who-name" }, state.me.name), " ", h("span", { class: `role role-${state.me.role}`, id: "role" }, state.me.role), dc);
  out.hidden = !token();
  nav.hidden = false;
}

function signIn(message) {
  stopView();
  showWho();
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "bearer token", "aria-label": "API token" });
  const err = h("p", { class: "form-error", id: "signin-error", role: "alert" }, message || "");
  const form = h(
    "form",
    {
      class: "signin card",
      onsubmit: async (e) => {
        e.preventDefault();
        setToken(input.value.trim());
        try {
          if (await whoAmI()) {
            banner(null);
            showWho();
            route();
          } else {
            setToken(null);
            err.textContent = "This token is not accepted by firmflowd. Check it and try again.";
          }
        } catch (x) {
          setToken(null);
          err.textContent = explain(x, "sign in");
        }
      },
    },
    h("h1", {}, "Sign in to firmflow"),
    h("p", { class: "muted" }, "Paste your API token. It is kept for this browser tab only and sent as an Authorization header."),
    input,
    h("button", { type: "submit", id: "signin" }, "Sign in"),
    err,
  );
  mount(main(), form);
  input.focus();
}

function stopView() {
  if (state.view && state.view.stop) state.view.stop();
  state.view = null;
}

function route() {
  if (!state.me) return;
  stopView();
  banner(null);
  const [path, query] = (location.hash.slice(1) || "/plans").split("?");
  const parts = path.split("/").filter(Boolean);
  const args = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${parts[0] || "plans"}`);
  }
  const onAuthLost = () => {
    setToken(null);
    state.me = null;
    signIn("Your session ended (the token is no longer accepted). Sign in again.");
  };
  const ctx = { me: state.me, onAuthLost };
  if (parts[0] === "plans" && parts[1]) state.view = planView(main(), ctx, parts[1]);
  else if (parts[0] === "compliance") state.view = complianceView(main(), ctx, args);
  else if (parts[0] === "events") state.view = eventsView(main(), ctx, args);
  else state.view = plansView(main(), ctx);
}

async function boot() {
  document.getElementById("signout").addEventListener("click", () => {
    setToken(null);
    state.me = null;
    signIn("Signed out.");
  });
  window.addEventListener("hashchange", route);
  try {
    // Without a stored token this still succeeds when the daemon has no tokens (open API).
    if (await whoAmI()) {
      showWho();
      route();
    } else {
      signIn(token() ? "Your token is no longer accepted. Sign in again." : "");
    }
  } catch (e) {
    signIn(explain(e, "reach firmflowd"));
  }
}

boot();
