import { api } from "../api";
import { h } from "../dom";

export async function tenantsPage(): Promise<HTMLElement> {
  const tenants = await api.tenants();
  return h(
    "section",
    { "aria-labelledby": "tenants-title" },
    h("h1", { id: "tenants-title" }, "Tenants"),
    h(
      "table",
      { class: "tenants" },
      h("thead", {}, h("tr", {}, ...["Tenant", "Namespace", "Jobs", "Replicas", "Policy", "Approval"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        ...tenants.map((t) =>
          h(
            "tr",
            { "data-tenant": t.name },
            h("th", { scope: "row" }, t.name),
            h("td", {}, t.namespace),
            h("td", {}, t.jobs.join(", ")),
            h("td", { class: "num" }, t.replicas),
            h("td", {}, t.policy ? JSON.stringify(t.policy) : "none"),
            h("td", { "data-field": "approval" }, t.approval),
          ),
        ),
      ),
    ),
  );
}
