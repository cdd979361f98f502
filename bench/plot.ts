// A run's figures as one SVG: a panel per unit (µs, MB/s, …), one row per figure, a bar to the
// median and a tick at the min, on a log scale (figures span microseconds to seconds).
import type { Figure, Machine } from './lib';
import { formatRatio, formatValue } from './lib';

const ROW = 18;
const LABEL_WIDTH = 430;
const PLOT_WIDTH = 420;
const VALUE_WIDTH = 150;
const WIDTH = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderSvg(run: { date: string; revision: string; machine: Machine; figures: Figure[] }): string {
  const units = [...new Set(run.figures.map((f) => f.unit))];
  const parts: string[] = [];
  let y = 44;
  for (const unit of units) {
    const figures = run.figures.filter((f) => f.unit === unit);
    const positive = figures.flatMap((f) => [f.min, f.median]).filter((v) => v > 0);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...positive))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...positive))));
    const x = (v: number): number => LABEL_WIDTH + (PLOT_WIDTH * Math.log10(Math.max(v, lo) / lo)) / Math.log10(hi / lo);
    parts.push(`<text x="4" y="${y}" font-weight="bold">${escape(unit)} (log scale; bar: median, tick: min)</text>`);
    y += 8;
    for (let decade = lo; decade <= hi; decade *= 10) {
      parts.push(`<line x1="${x(decade)}" y1="${y}" x2="${x(decade)}" y2="${y + figures.length * ROW}" stroke="#ddd"/>`);
      parts.push(`<text x="${x(decade)}" y="${y + figures.length * ROW + 12}" font-size="10" text-anchor="middle">${formatValue(decade)}</text>`);
    }
    for (const f of figures) {
      const label = f.versus ? `${f.label} (${formatRatio(f.versus.ratio)}× ${f.versus.id})` : f.label;
      parts.push(`<text x="${LABEL_WIDTH - 6}" y="${y + 13}" font-size="11" text-anchor="end">${escape(label.length > 72 ? label.slice(0, 71) + '…' : label)}</text>`);
      parts.push(`<rect x="${LABEL_WIDTH}" y="${y + 3}" width="${Math.max(1, x(f.median) - LABEL_WIDTH)}" height="${ROW - 6}" fill="${f.versus ? '#d9822b' : '#4a7fb5'}"/>`);
      parts.push(`<line x1="${x(f.min)}" y1="${y + 1}" x2="${x(f.min)}" y2="${y + ROW - 1}" stroke="#000" stroke-width="2"/>`);
      parts.push(`<text x="${LABEL_WIDTH + PLOT_WIDTH + 8}" y="${y + 13}" font-size="11">${formatValue(f.min)} / ${formatValue(f.median)}</text>`);
      y += ROW;
    }
    y += 40;
  }
  const m = run.machine;
  const title = `GRASS benchmarks — revision ${run.revision}, ${run.date}, ${m.cpu} × ${m.cpus}, load ${m.loadAverage.toFixed(1)}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="4" y="18" font-size="13">${escape(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
