// Line charts as inline SVG: no dependency, readable without JavaScript
// libraries, and testable: each chart's <figure> carries data-chart (its
// name) and data-points (how many x values it plots), and each point is a
// <circle> with data-round.
import { h, s } from "./dom";

export interface Series {
  name: string;
  values: (number | null)[];
}

export interface ChartSpec {
  id: string;
  title: string;
  xs: number[]; // rounds
  series: Series[];
  yLabel?: string;
  budget?: { value: number; label: string }; // a horizontal limit line
  format?: (v: number) => string;
}

const W = 560;
const H = 220;
const M = { top: 12, right: 16, bottom: 32, left: 56 };
const COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490"];

function ticks(lo: number, hi: number, n = 4): number[] {
  if (hi === lo) return [lo];
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

export function lineChart(spec: ChartSpec): HTMLElement {
  const f = spec.format ?? ((v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)));
  const all = spec.series.flatMap((x) => x.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (spec.budget) all.push(spec.budget.value);
  let lo = all.length ? Math.min(...all) : 0;
  let hi = all.length ? Math.max(...all) : 1;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const x0 = spec.xs.length ? spec.xs[0] : 0;
  const x1 = spec.xs.length > 1 ? spec.xs[spec.xs.length - 1] : x0 + 1;
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - lo) / (hi - lo)) * (H - M.top - M.bottom);

  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `${spec.title}: ${spec.series.map((x) => x.name).join(", ")} over ${spec.xs.length} rounds`,
  });
  for (const t of ticks(lo, hi)) {
    svg.append(
      s("line", { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t), class: "grid" }),
      s("text", { x: M.left - 6, y: py(t) + 4, "text-anchor": "end", class: "tick" }, f(t)),
    );
  }
  const step = Math.max(1, Math.ceil(spec.xs.length / 10));
  spec.xs.forEach((x, i) => {
    if (i % step === 0 || i === spec.xs.length - 1) {
      svg.append(s("text", { x: px(x), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, x));
    }
  });
  svg.append(s("text", { x: (W + M.left) / 2, y: H - 2, "text-anchor": "middle", class: "axis" }, "round"));
  if (spec.budget) {
    const y = py(spec.budget.value);
    svg.append(
      s("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "budget" }),
      s("text", { x: W - M.right, y: y - 4, "text-anchor": "end", class: "budget-label" }, spec.budget.label),
    );
  }
  spec.series.forEach((ser, si) => {
    const color = COLORS[si % COLORS.length];
    const pts = spec.xs
      .map((x, i) => [x, ser.values[i]] as const)
      .filter((p): p is readonly [number, number] => p[1] !== null && Number.isFinite(p[1]));
    if (pts.length > 1) {
      svg.append(
        s("polyline", {
          points: pts.map(([x, y]) => `${px(x)},${py(y)}`).join(" "),
          fill: "none",
          stroke: color,
          "stroke-width": 2,
        }),
      );
    }
    for (const [x, y] of pts) {
      const c = s("circle", { cx: px(x), cy: py(y), r: 3, fill: color, "data-round": x, "data-series": ser.name });
      c.append(s("title", {}, `${ser.name}, round ${x}: ${f(y)}`));
      svg.append(c);
    }
  });

  const legend = h(
    "ul",
    { class: "legend" },
    ...spec.series.map((ser, si) =>
      h("li", {}, h("span", { class: "swatch", style: `background:${COLORS[si % COLORS.length]}` }), ser.name),
    ),
  );
  // The same numbers as a table, for screen readers and copying.
  const table = h(
    "table",
    {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "round"), ...spec.series.map((x) => h("th", { scope: "col" }, x.name)))),
    h(
      "tbody",
      {},
      ...spec.xs.map((x, i) =>
        h("tr", {}, h("th", { scope: "row" }, x), ...spec.series.map((ser) => h("td", {}, ser.values[i] == null ? "—" : f(ser.values[i] as number)))),
      ),
    ),
  );
  return h(
    "figure",
    { class: "chart", id: `chart-${spec.id}`, "data-chart": spec.id, "data-points": spec.xs.length },
    h("figcaption", {}, spec.title, spec.yLabel ? h("span", { class: "unit" }, ` (${spec.yLabel})`) : null),
    svg,
    legend,
    h("details", {}, h("summary", {}, "Data"), table),
  );
}

/** Which tenants contributed to which round: a grid of cells. */
export function participationGrid(tenants: string[], rounds: { round: number; tenants: string[]; participants: number }[]): HTMLElement {
  const cell = 14;
  const left = 110;
  const w = left + Math.max(1, rounds.length) * (cell + 2) + 8;
  const hgt = 20 + tenants.length * (cell + 4);
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": "participation per tenant and round", style: `max-width:${w * 1.5}px` });
  tenants.forEach((t, ti) => {
    const y = 14 + ti * (cell + 4);
    svg.append(s("text", { x: left - 6, y: y + cell - 3, "text-anchor": "end", class: "tick" }, t));
    rounds.forEach((r, ri) => {
      const took = r.tenants.includes(t);
      const rect = s("rect", {
        x: left + ri * (cell + 2),
        y,
        width: cell,
        height: cell,
        rx: 2,
        class: took ? "took-part" : "missed",
        "data-round": r.round,
        "data-tenant": t,
      });
      rect.append(s("title", {}, `${t}, round ${r.round}: ${took ? "contributed" : "no update"}`));
      svg.append(rect);
    });
  });
  return h(
    "figure",
    { class: "chart", "data-chart": "participation", "data-points": rounds.length },
    h("figcaption", {}, "Participation per tenant"),
    svg,
  );
}
