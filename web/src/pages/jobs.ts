import { api } from "../api";
import { fmt, h, phaseBadge } from "../dom";

export async function jobsPage(): Promise<HTMLElement> {
  const jobs = await api.jobs();
  const rows = jobs.map((j) =>
    h(
      "tr",
      { "data-job": `${j.namespace}/${j.name}` },
      h("th", { scope: "row" }, h("a", { href: `#/jobs/${j.namespace}/${j.name}` }, j.name)),
      h("td", {}, j.namespace),
      h("td", {}, phaseBadge(j.phase)),
      h("td", { class: "num", "data-field": "round" }, `${j.round}/${j.total_rounds}`),
      h("td", { class: "num" }, fmt(j.train_loss)),
      h("td", { class: "num" }, fmt(j.eval_loss)),
      h("td", { class: "num" }, fmt(j.eval_accuracy)),
      h("td", { class: "num" }, j.epsilon === null ? "—" : `${fmt(j.epsilon, 2)}${j.max_epsilon ? ` / ${j.max_epsilon}` : ""}`),
    ),
  );
  return h(
    "section",
    { "aria-labelledby": "jobs-title" },
    h("h1", { id: "jobs-title" }, "Jobs"),
    jobs.length === 0
      ? h("p", {}, "No jobs.")
      : h(
          "table",
          { class: "jobs" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["Job", "Namespace", "Phase", "Round", "Train loss", "Eval loss", "Accuracy", "ε"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h("tbody", {}, ...rows),
        ),
  );
}
