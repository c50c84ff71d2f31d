// The dashboard: a hash-routed single page over /api/, redrawn on every
// Server-Sent Event so charts grow as rounds complete.
import "./style.css";
import { adoptTokenFromUrl, ApiError, subscribe, token } from "./api";
import { h } from "./dom";
import { auditPage } from "./pages/audit";
import { jobPage } from "./pages/job";
import { jobsPage } from "./pages/jobs";
import { tenantsPage } from "./pages/tenants";

adoptTokenFromUrl(); // before the first request and the event stream
const app = document.getElementById("app")!;
const live = document.getElementById("live")!;

function route(): Promise<HTMLElement> {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "tenants") return tenantsPage();
  if (parts[0] === "jobs" && parts.length === 3) return jobPage(parts[1], parts[2]);
  if (parts[0] === "jobs" && parts.length === 4 && parts[3] === "audit") return auditPage(parts[1], parts[2]);
  return jobsPage();
}

// Without a valid token (a tab opened without the printed URL, or the
// operator's dashboard) the page asks for one, once per tab.
function tokenForm(message: string): HTMLElement {
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", "aria-describedby": "token-help" }) as HTMLInputElement;
  const form = h(
    "form",
    { class: "token", "aria-labelledby": "token-title" },
    h("h1", { id: "token-title" }, "Sign in"),
    h("p", { id: "token-help" }, message, " Open the URL that `braid run --dashboard` printed, or paste a token (the part after #token= of that URL, or for the operator's dashboard e.g. `kubectl create token NAME -n NAMESPACE`); it is kept for this tab only."),
    h("label", { for: "token" }, "Token "),
    input,
    " ",
    h("button", { type: "submit" }, "Use token"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    token.set(input.value);
    location.reload(); // reconnects the event stream with the token
  });
  return form;
}

let rendering = false;
let again = false;
let lastHash = "";

async function render() {
  if (rendering) {
    again = true;
    return;
  }
  rendering = true;
  try {
    const page = await route();
    const newPage = location.hash !== lastHash;
    // Keep open <details> open across live redraws.
    const open = new Set([...app.querySelectorAll("figure[data-chart] details[open]")].map((d) => d.closest("figure")!.getAttribute("data-chart")));
    for (const f of page.querySelectorAll("figure[data-chart]")) {
      if (open.has(f.getAttribute("data-chart"))) f.querySelector("details")?.setAttribute("open", "");
    }
    app.replaceChildren(page);
    if (newPage) {
      lastHash = location.hash;
      document.title = `${page.querySelector("h1")?.textContent ?? "Braid"} · Braid`;
      app.focus();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      app.replaceChildren(tokenForm((e as Error).message));
      return;
    }
    app.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot load: ${(e as Error).message}`));
  } finally {
    rendering = false;
    if (again) {
      again = false;
      void render();
    }
  }
}

window.addEventListener("hashchange", () => void render());
subscribe(
  () => void render(),
  (state) => {
    live.textContent = state;
    live.setAttribute("data-state", state);
    if (state === "live") void render(); // catch up on anything missed while disconnected
  },
);
void render();
