// Line charts as standalone SVG text, written by hand (no plotting dependency): throughput against
// batch size, the latency distribution, resident memory over time.

export type Series = {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  color: string;
  dashed?: boolean;
  markers?: boolean;
};
export type Tick = { at: number; label: string };
export type Axis = {
  label: string;
  log?: boolean;
  min?: number;
  max?: number;
  ticks?: ReadonlyArray<Tick>;
};
export type Chart = {
  title: string;
  subtitle?: string;
  x: Axis;
  y: Axis;
  series: ReadonlyArray<Series>;
  width?: number;
  height?: number;
};

export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#17becf",
  "#7f7f7f",
] as const;

const MARGIN = { left: 78, right: 24, top: 56, bottom: 92 };
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** 1, 2, 5 × 10^k steps, about `count` of them across [lo, hi]. */
function niceTicks(lo: number, hi: number, count: number): Tick[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: Tick[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push({ at: v, label: formatNumber(v) });
  return ticks;
}

function logTicks(lo: number, hi: number): Tick[] {
  const ticks: Tick[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e += 1) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push({ at: v, label: formatNumber(v) });
    }
  }
  return ticks;
}

export function formatNumber(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10 || Number.isInteger(v)) return String(Math.round(v * 10) / 10);
  return String(Math.round(v * 100) / 100);
}

function range(axis: Axis, values: number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v) && (!axis.log || v > 0));
  let lo = axis.min ?? Math.min(...finite);
  let hi = axis.max ?? Math.max(...finite);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [axis.log ? 1 : 0, 1];
  if (lo === hi) hi = lo + (axis.log ? lo : 1);
  return [lo, hi];
}

export function lineChart(c: Chart): string {
  const width = c.width ?? 760;
  const height = c.height ?? 440;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const [x0, x1] = range(
    c.x,
    c.series.flatMap((s) => s.points.map((p) => p[0])),
  );
  const [y0, y1] = range(
    c.y,
    c.series.flatMap((s) => s.points.map((p) => p[1])),
  );
  const tx = (v: number) =>
    MARGIN.left +
    (c.x.log
      ? (Math.log(v) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))
      : (v - x0) / (x1 - x0)) *
      plotW;
  const ty = (v: number) =>
    MARGIN.top +
    plotH -
    (c.y.log
      ? (Math.log(v) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))
      : (v - y0) / (y1 - y0)) *
      plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
  );
  if (c.subtitle)
    out.push(
      `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${esc(c.subtitle)}</text>`,
    );
  const xt = c.x.ticks ?? (c.x.log ? logTicks(x0, x1) : niceTicks(x0, x1, 8));
  const yt = c.y.ticks ?? (c.y.log ? logTicks(y0, y1) : niceTicks(y0, y1, 6));
  for (const t of xt) {
    if (t.at < x0 || t.at > x1) continue;
    const x = tx(t.at).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#e5e5e5"/>`,
    );
    out.push(
      `<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  }
  for (const t of yt) {
    if (t.at < y0 || t.at > y1) continue;
    const y = ty(t.at).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#e5e5e5"/>`,
    );
    out.push(
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(t.label)}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 36}" text-anchor="middle">${esc(c.x.label)}</text>`,
  );
  out.push(
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(c.y.label)}</text>`,
  );
  for (const s of c.series) {
    const pts = s.points.filter(
      ([x, y]) =>
        Number.isFinite(x) && Number.isFinite(y) && (!c.x.log || x > 0) && (!c.y.log || y > 0),
    );
    if (pts.length === 0) continue;
    const d = pts
      .map(
        ([x, y], i) =>
          `${i === 0 ? "M" : "L"}${tx(x).toFixed(1)},${ty(Math.min(Math.max(y, y0), y1)).toFixed(1)}`,
      )
      .join(" ");
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
    if (s.markers)
      for (const [x, y] of pts)
        out.push(
          `<circle cx="${tx(x).toFixed(1)}" cy="${ty(y).toFixed(1)}" r="3.5" fill="${s.color}"/>`,
        );
  }
  // Legend under the plot, wrapped into rows.
  let lx = MARGIN.left;
  let ly = MARGIN.top + plotH + 58;
  for (const s of c.series) {
    const w = 34 + s.name.length * 6.6;
    if (lx + w > width - MARGIN.right) {
      lx = MARGIN.left;
      ly += 16;
    }
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
    out.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
    lx += w;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** Percentile axis in "nines": x = −log10(1 − q), so p50, p90, p99, p99.9 are evenly spaced. */
export function ninesOf(q: number): number {
  return -Math.log10(1 - q);
}

export const NINES_TICKS: Tick[] = [
  { at: ninesOf(0.5), label: "p50" },
  { at: ninesOf(0.9), label: "p90" },
  { at: ninesOf(0.99), label: "p99" },
  { at: ninesOf(0.999), label: "p99.9" },
  { at: ninesOf(0.9999), label: "p99.99" },
];

/** The latency distribution of sorted samples as points on the nines axis, up to the largest q it resolves. */
export function percentileCurve(sorted: ArrayLike<number>): Array<[number, number]> {
  const n = sorted.length;
  const points: Array<[number, number]> = [];
  if (n === 0) return points;
  for (let x = 0; x <= 4.0001; x += 0.05) {
    const q = 1 - 10 ** -x;
    if (q > 1 - 1 / n) break;
    const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
    points.push([x, sorted[rank] as number]);
  }
  return points;
}
