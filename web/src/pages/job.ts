import { api, type JobDetail, type TenantConsent } from "../api";
import { lineChart, participationGrid } from "../chart";
import { bytes, fmt, h, phaseBadge } from "../dom";

function specList(j: JobDetail): HTMLElement {
  const sp = j.spec;
  const model = sp.model.kind === "mlp" && sp.model.hidden ? `mlp, hidden ${sp.model.hidden.join("×")}, ${sp.model.num_classes} classes` : sp.model.kind;
  const items: [string, string][] = [
    ["Model", model],
    ["Strategy", `${sp.strategy.name}, ${sp.strategy.rounds} rounds, min ${sp.strategy.min_clients} clients, fraction ${sp.strategy.fraction_fit}`],
    ["Training", `${sp.training.optimizer}, lr ${sp.training.learning_rate}, batch ${sp.training.batch_size}, ${sp.training.local_epochs} local epoch(s)`],
    ["Tenants", sp.tenants.map((t) => `${t.name} (${t.replicas})`).join(", ")],
    ["Privacy", sp.privacy ? JSON.stringify(sp.privacy) : "none"],
  ];
  return h("dl", { class: "spec" }, ...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// Each tenant's consent, with approve/refuse for those that need it. The
// server decides who may (403 is shown next to the buttons).
function consentSection(j: JobDetail): HTMLElement | null {
  const rows = (j.consent ?? []).filter((c) => c.consent !== "NotRequired");
  if (rows.length === 0) return null;
  const row = (c: TenantConsent) => {
    const note = h("span", { class: "note", role: "status", "data-field": "decision-result" });
    const comment = h("input", { type: "text", placeholder: "comment (optional)", "aria-label": `comment for ${c.tenant}` }) as HTMLInputElement;
    const button = (approve: boolean) => {
      const b = h("button", { type: "button", "data-action": approve ? "approve" : "refuse" }, approve ? "Approve" : "Refuse");
      b.addEventListener("click", async () => {
        b.setAttribute("disabled", "");
        try {
          await api.decide(j.namespace, j.name, c.tenant, approve, comment.value);
          note.textContent = approve ? "approved" : "refused";
        } catch (e) {
          note.textContent = (e as Error).message;
        } finally {
          b.removeAttribute("disabled");
        }
      });
      return b;
    };
    return h(
      "tr",
      { "data-tenant": c.tenant },
      h("td", {}, c.tenant),
      h("td", {}, c.namespace),
      h("td", { "data-field": "consent" }, c.consent),
      h("td", {}, c.comment),
      h("td", {}, comment, " ", button(true), " ", button(false), " ", note),
    );
  };
  return h(
    "div",
    { class: "consent" },
    h("h2", {}, "Consent"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...["Tenant", "Namespace", "Consent", "Comment", "Decide"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...rows.map(row)),
    ),
  );
}

export async function jobPage(ns: string, name: string): Promise<HTMLElement> {
  const j = await api.job(ns, name);
  const xs = j.rounds.map((r) => r.round);
  const last = j.rounds[j.rounds.length - 1];
  const charts = h(
    "div",
    { class: "charts" },
    lineChart({
      id: "loss",
      title: "Loss",
      xs,
      series: [
        { name: "train loss", values: j.rounds.map((r) => r.train_loss) },
        { name: "eval loss", values: j.rounds.map((r) => r.eval_loss) },
      ],
    }),
    lineChart({
      id: "accuracy",
      title: "Eval accuracy",
      xs,
      series: [{ name: "eval accuracy", values: j.rounds.map((r) => r.eval_accuracy) }],
    }),
    participationGrid(
      j.spec.tenants.map((t) => t.name),
      j.rounds,
    ),
    lineChart({
      id: "bytes",
      title: "Bytes per round",
      xs,
      series: [
        { name: "up (updates)", values: j.rounds.map((r) => r.bytes_up) },
        { name: "down (weights)", values: j.rounds.map((r) => r.bytes_down) },
      ],
      format: bytes,
    }),
    j.rounds.some((r) => r.epsilon !== undefined)
      ? lineChart({
          id: "epsilon",
          title: "Privacy spent (ε)",
          xs,
          series: [{ name: "ε", values: j.rounds.map((r) => r.epsilon ?? null) }],
          budget: j.max_epsilon ? { value: j.max_epsilon, label: `budget ${j.max_epsilon}` } : undefined,
        })
      : h("p", { class: "note" }, "No differential privacy in this job: no ε to show."),
  );
  return h(
    "section",
    { "aria-labelledby": "job-title", "data-job": `${ns}/${name}` },
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / ", ns),
    h("h1", { id: "job-title" }, name, " ", phaseBadge(j.phase)),
    h(
      "p",
      { class: "status", "data-field": "status" },
      h("span", { "data-field": "round" }, `round ${j.round} of ${j.total_rounds}`),
      j.reason ? ` · ${j.reason}` : "",
      j.message ? ` · ${j.message}` : "",
    ),
    last
      ? h(
          "p",
          { class: "latest" },
          `latest: train loss ${fmt(last.train_loss)}, eval loss ${fmt(last.eval_loss)}, accuracy ${fmt(last.eval_accuracy)}, `,
          `${last.participants}/${last.sampled} clients, ${last.seconds.toFixed(1)} s`,
        )
      : h("p", { class: "latest" }, "No round completed yet."),
    h("p", {}, h("a", { href: `#/jobs/${ns}/${name}/audit` }, "Audit log")),
    consentSection(j),
    h("h2", {}, "Spec"),
    specList(j),
    h("h2", {}, "Rounds"),
    charts,
  );
}
