// Target Health page: the SHFH metrics of the last minutes as small plots (uPlot, canvas), one per
// CPU (usr, sys, iowait, busy) and one each for run/blk, cs/s, pswpout/s, memfree and util, with
// the detectors' thresholds as dashed lines and the moments detections fired as vertical lines.
// Under each plot's title its last values in words, and below the plots a table of the latest
// windows: what a screen reader (and the UI test) reads instead of the canvases.
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css' with { type: 'text' };
import { addStyles, heading, registeredComponents, statusLine } from '../components';
import { connectToHost } from '../components/host';
import {
  HEALTH_TABLE_ROWS,
  healthCells,
  healthColumns,
  type HealthHostMessage,
  type HealthMark,
  type HealthWebviewMessage,
  type HealthWindow,
  type MetricPlot,
  type Threshold,
} from '../../src/types/health-protocol';

const host = connectToHost<HealthHostMessage, HealthWebviewMessage>();
const PAGE_HEADING = 'Target Health';
const MIB = 1048576;

addStyles(uplotCss);
addStyles(`
  .health-plots { display: flex; flex-wrap: wrap; gap: 12px; }
  .health-plot { width: 380px; }
  .health-plot h2 { font-size: 1em; margin: 4px 0 0; }
  .health-readout { margin: 0 0 2px; font-variant-numeric: tabular-nums; min-height: 1.4em; }
  .health-key { font-weight: 600; }
  .health-lines { margin: 0 0 2px; color: var(--vscode-descriptionForeground); min-height: 1.4em; }
  .health-plot .uplot { font-family: var(--vscode-font-family); }
  .health-plot .u-axis { color: var(--vscode-descriptionForeground); }
  #marks li { font-variant-numeric: tabular-nums; }
  #recent { border-collapse: collapse; font-variant-numeric: tabular-nums; margin-top: 8px; }
  #recent th, #recent td { border: 1px solid var(--vscode-panel-border, var(--vscode-widget-border, transparent)); padding: 1px 6px; text-align: right; }
`);

/** A plot: its series (name, what of a window, in the plot's unit) and where its thresholds go. */
interface PlotSpec {
  id: string;
  title: string;
  kind: MetricPlot;
  unit: string;
  series: { name: string; value(w: HealthWindow): number | null; dash?: boolean }[];
  /** Threshold values are in this plot's unit after it (memfree: bytes to MiB). */
  scale?: number;
  format(x: number): string;
}

const pct = (x: number): string => `${x.toFixed(1)} %`;

function specs(cpus: number): PlotSpec[] {
  const cpuPlots = Array.from({ length: cpus }, (_, cpu): PlotSpec => ({
    id: `cpu${cpu}`,
    title: `CPU ${cpu}`,
    kind: 'cpu',
    unit: '%',
    series: [
      { name: 'usr', value: (w) => w.cpus[cpu]?.usr ?? null },
      { name: 'sys', value: (w) => w.cpus[cpu]?.sys ?? null },
      { name: 'iowait', value: (w) => w.cpus[cpu]?.iowait ?? null },
      { name: 'busy', value: (w) => w.cpus[cpu]?.busy ?? null, dash: true },
    ],
    format: pct,
  }));
  return [
    ...cpuPlots,
    { id: 'runBlk', title: 'run / blk (tasks)', kind: 'runBlk', unit: 'tasks', series: [{ name: 'run', value: (w) => w.run }, { name: 'blk', value: (w) => w.blk }], format: String },
    { id: 'cs', title: 'context switches per second', kind: 'contextSwitches', unit: '/s', series: [{ name: 'cs/s', value: (w) => w.contextSwitchesPerSecond }], format: (x) => x.toFixed(0) },
    { id: 'pswpout', title: 'pages swapped out per second', kind: 'pswpout', unit: 'pages/s', series: [{ name: 'pswpout/s', value: (w) => w.pswpoutPerSecond }], format: (x) => x.toFixed(1) },
    { id: 'memFree', title: 'free memory (MiB)', kind: 'memFree', unit: 'MiB', scale: 1 / MIB, series: [{ name: 'memfree', value: (w) => w.memFreeBytes / MIB }], format: (x) => `${x.toFixed(1)} MiB` },
    { id: 'util', title: 'disk util, busiest disk', kind: 'util', unit: '%', series: [{ name: 'util', value: (w) => w.util }], format: pct },
  ];
}

/** Colours from the theme (VS Code's chart colours), read when plots are made. */
function themeColours(): { series: string[]; threshold: string; mark: string; grid: string; text: string } {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  return {
    series: [v('--vscode-charts-blue', '#3794ff'), v('--vscode-charts-orange', '#d18616'), v('--vscode-charts-purple', '#b180d7'), v('--vscode-charts-green', '#89d185')],
    threshold: v('--vscode-charts-red', '#f14c4c'),
    mark: v('--vscode-charts-yellow', '#cca700'),
    grid: v('--vscode-editorWidget-border', '#80808040'),
    text: v('--vscode-foreground', '#cccccc'),
  };
}

interface Plot {
  spec: PlotSpec;
  chart: uPlot;
  readout: HTMLElement;
  /** The thresholds drawn on it, in words. */
  lines: HTMLElement;
  /** Its series' colours, in order. */
  colours: string[];
}

const title = heading(PAGE_HEADING);
const status = statusLine('status');
// What the page's Content-Security-Policy refused (a style or script the plots needed), said on
// the page rather than only in the developer tools' console.
const refused = statusLine('csp');
document.addEventListener('securitypolicyviolation', (e) => refused.set(`Refused by the page's Content-Security-Policy: ${e.effectiveDirective} ${e.blockedURI || '(inline)'}`, true));
const plotsBox = document.createElement('div');
plotsBox.className = 'health-plots';
plotsBox.id = 'plots';
const marksHeading = document.createElement('h2');
marksHeading.textContent = 'Detections in this span';
const marksList = document.createElement('ul');
marksList.id = 'marks';
const table = document.createElement('table');
table.id = 'recent';
table.setAttribute('aria-label', 'the latest metrics windows');
document.body.append(title, status.element, refused.element, plotsBox, marksHeading, marksList, table);

let plots = new Map<string, Plot>();
let thresholds: Threshold[] = [];
let marks: HealthMark[] = [];
let plottedCpus = -1;

/** Dashed threshold lines of the plot's kind, solid vertical lines where detections fired. */
function drawOverlays(spec: PlotSpec, colours: ReturnType<typeof themeColours>): (u: uPlot) => void {
  return (u) => {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.lineWidth = devicePixelRatio;
    ctx.strokeStyle = colours.threshold;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    for (const t of thresholds.filter((x) => x.plot === spec.kind)) {
      const y = u.valToPos(t.value * (spec.scale ?? 1), 'y', true);
      if (y < top || y > top + height) continue;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.strokeStyle = colours.mark;
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const m of marks) {
      const x = u.valToPos(m.at, 'x', true);
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  };
}

function makePlot(spec: PlotSpec, colours: ReturnType<typeof themeColours>): Plot {
  const card = document.createElement('section');
  card.className = 'health-plot';
  card.id = `plot-${spec.id}`;
  const h = document.createElement('h2');
  h.textContent = spec.title;
  const readout = document.createElement('p');
  readout.className = 'health-readout';
  const lines = document.createElement('p');
  lines.className = 'health-lines';
  card.append(h, readout, lines);
  plotsBox.append(card);
  const strokes = spec.series.map((_, i) => colours.series[i % colours.series.length]);
  const axis = { stroke: colours.text, grid: { stroke: colours.grid, width: 1 }, ticks: { stroke: colours.grid, width: 1 } };
  const chart = new uPlot(
    {
      width: 380,
      height: 130,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false },
        // The y range takes in the thresholds, so that each line is on the plot.
        y: {
          range: (_u, min, max) => {
            const limits = thresholds.filter((t) => t.plot === spec.kind).map((t) => t.value * (spec.scale ?? 1));
            const hi = Math.max(max, ...limits, spec.unit === '%' ? 100 : 1);
            return [Math.min(0, min), hi * 1.05];
          },
        },
      },
      axes: [{ ...axis, label: 'monitor clock (s)', labelSize: 14, size: 30 }, { ...axis, size: 50 }],
      series: [{}, ...spec.series.map((s, i) => ({ label: s.name, stroke: strokes[i], width: 1.5, points: { show: false }, ...(s.dash ? { dash: [3, 3] } : {}) }))],
      hooks: { draw: [drawOverlays(spec, colours)] },
    },
    [[], ...spec.series.map(() => [])],
    card,
  );
  return { spec, chart, readout, lines, colours: strokes };
}

function rebuild(cpus: number): void {
  for (const p of plots.values()) p.chart.destroy();
  plotsBox.replaceChildren();
  const colours = themeColours();
  plots = new Map(specs(cpus).map((s) => [s.id, makePlot(s, colours)]));
  plottedCpus = cpus;
}

let last: Extract<HealthHostMessage, { type: 'health' }> | undefined;

function show(message: Extract<HealthHostMessage, { type: 'health' }>): void {
  last = message;
  thresholds = message.thresholds;
  marks = message.marks;
  const windows = message.windows;
  const newest = windows.at(-1);
  status.set(
    message.error ? `Cannot read the metrics of ${message.target}: ${message.error}` : newest ? `${message.target}: ${windows.length} windows, the last ending at ${newest.end.toFixed(3)} s of the monitor clock.` : `${message.target}: waiting for the first window.`,
    message.error !== undefined,
  );
  if (!newest) return;
  if (newest.cpus.length !== plottedCpus) rebuild(newest.cpus.length);
  const xs = windows.map((w) => w.end);
  for (const p of plots.values()) {
    p.chart.setData([xs, ...p.spec.series.map((s) => windows.map((w) => s.value(w)))] as uPlot.AlignedData);
    // Each series' name in its line's colour (set through the CSSOM, which the CSP allows): the key to the plot.
    p.readout.replaceChildren(
      ...p.spec.series.flatMap((s, i) => {
        const name = document.createElement('span');
        name.className = 'health-key';
        name.textContent = s.name;
        name.style.color = p.colours[i] ?? '';
        return [...(i > 0 ? [' · '] : []), name, ` ${formatOrNone(p.spec, s.value(newest))}`];
      }),
    );
    const drawn = thresholds.filter((t) => t.plot === p.spec.kind);
    p.lines.textContent = drawn.length ? `dashed: ${drawn.map((t) => `${t.label} (${p.spec.format(t.value * (p.spec.scale ?? 1))})`).join('; ')}` : '';
  }
  marksList.replaceChildren(
    ...(marks.length ? marks : [undefined]).map((m) => {
      const li = document.createElement('li');
      li.textContent = m ? `${m.label} detected at ${m.at.toFixed(3)} s${m.active ? ' (active)' : ''}` : 'none';
      return li;
    }),
  );
  renderTable(windows.slice(-HEALTH_TABLE_ROWS).reverse(), newest.cpus.length);
}

function formatOrNone(spec: PlotSpec, x: number | null): string {
  return x === null ? 'none' : spec.format(x);
}

function renderTable(rows: HealthWindow[], cpus: number): void {
  const head = document.createElement('tr');
  for (const c of healthColumns(cpus)) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = c;
    head.append(th);
  }
  table.replaceChildren(
    head,
    ...rows.map((w) => {
      const tr = document.createElement('tr');
      for (const cell of healthCells(w)) {
        const td = document.createElement('td');
        td.textContent = cell;
        tr.append(td);
      }
      return tr;
    }),
  );
}

// A theme change (VS Code swaps the body's classes) redraws the plots in its colours.
new MutationObserver(() => {
  if (plottedCpus < 0 || !last) return;
  rebuild(plottedCpus);
  show(last);
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

host.onMessage((message: HealthHostMessage | { type: 'ping'; id: number }) => {
  switch (message.type) {
    case 'ping':
      host.post({ type: 'pong', id: message.id, heading: PAGE_HEADING, components: registeredComponents() });
      break;
    case 'status':
      status.set(message.text, !message.connected);
      break;
    case 'health':
      show(message);
      break;
  }
});
host.post({ type: 'ready' });
