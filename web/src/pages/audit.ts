import { api, ApiError } from "../api";
import { h } from "../dom";

function detailsText(d: Record<string, unknown>): string {
  return Object.entries(d)
    .map(([k, v]) => {
      if (typeof v === "string") return `${k}=${v}`;
      // The log keeps full precision; six significant digits read better here.
      if (typeof v === "number" && !Number.isInteger(v)) return `${k}=${Number(v.toPrecision(6))}`;
      return `${k}=${JSON.stringify(v)}`;
    })
    .join(" ");
}

export async function auditPage(ns: string, name: string): Promise<HTMLElement> {
  const head = h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / ", h("a", { href: `#/jobs/${ns}/${name}` }, name), " / audit");
  let log;
  try {
    log = await api.audit(ns, name);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return h("section", {}, head, h("h1", {}, "Audit log"), h("p", {}, `No audit log yet: ${e.message}`));
    }
    throw e;
  }
  const v = log.verification;
  const verdict = h(
    "p",
    { class: v.ok ? "verdict ok" : "verdict broken", "data-verified": v.ok ? "verified" : "broken", role: "status" },
    v.ok ? `✔ verified: ${v.entries} entries, hash chain intact` : `✘ broken: ${v.text}`,
  );
  const rows = log.entries.map((e) =>
    h(
      "tr",
      { "data-kind": e.kind },
      h("td", { class: "num" }, e.seq),
      h("td", {}, h("time", { datetime: e.time }, e.time.replace("T", " ").replace("Z", " UTC"))),
      h("td", {}, e.kind),
      h("td", {}, e.actor),
      h("td", { class: "details" }, detailsText(e.details)),
      h("td", { class: "hash", title: e.hash }, e.hash.slice(0, 12)),
    ),
  );
  return h(
    "section",
    { "aria-labelledby": "audit-title" },
    head,
    h("h1", { id: "audit-title" }, "Audit log"),
    verdict,
    h("p", { class: "note" }, "File: ", h("code", {}, log.path), ". Check it yourself with ", h("code", {}, `braid audit verify ${log.path}`), "."),
    h(
      "table",
      { class: "audit" },
      h("thead", {}, h("tr", {}, ...["#", "Time", "Kind", "Actor", "Details", "Hash"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...rows),
    ),
  );
}
