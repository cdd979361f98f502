// npm run bench: runs the figure groups of bench/figures/ in one process (every group but the long
// ones; --all: every group; --only A,B: those named), prints a table and writes the run as JSON
// and an SVG plot under bench/results/local/ (and to bench/results/latest.{json,svg,md} with
// --save: the copy the README quotes).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Bench, Figure, FigureGroup, formatRatio, formatValue, gitRevision, machine, table } from './lib';
import { paperRows, paperTable } from './paper';
import { renderSvg } from './plot';

const root = path.resolve(__dirname, '..');

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, all: { type: 'boolean', default: false }, save: { type: 'boolean', default: false }, list: { type: 'boolean', default: false } } });
  const modules = readdirSync(path.join(__dirname, 'figures')).filter((f) => f.endsWith('.ts')).sort();
  const groups: FigureGroup[] = [];
  for (const file of modules) groups.push(((await import(path.join(__dirname, 'figures', file))) as { group: FigureGroup }).group);
  if (values.list) {
    for (const g of groups) process.stdout.write(`${g.name.padEnd(14)} ${g.description}${g.long ? ` [long, --all: ${g.long}]` : ''}\n`);
    return 0;
  }
  const only = values.only?.split(',');
  const unknown = only?.filter((n) => !groups.some((g) => g.name === n)) ?? [];
  if (unknown.length) throw new Error(`no figure group ${unknown.join(', ')} (see --list)`);

  const startedAt = new Date().toISOString();
  const host = machine();  // its load average is the one at the start, as the report says
  const figures: Figure[] = [];
  const skipped: { group: string; reason: string }[] = [];
  const seconds: Record<string, number> = {};  // each group's wall time: the whole run must stay short
  const chosen = groups.filter((g) => (only ? only.includes(g.name) : values.all || !g.long));
  const leftOut = groups.filter((g) => !chosen.includes(g) && g.long).map((g) => ({ group: g.name, long: g.long! }));
  for (const g of leftOut) process.stderr.write(`bench: ${g.group} left out (long: ${g.long}; --all or --only ${g.group} runs it)\n`);
  for (const g of chosen) {
    process.stderr.write(`bench: ${g.name}: ${g.description}\n`);
    const bench = new Bench(g.name);
    const started = Date.now();
    try {
      await g.run(bench);
    } catch (err) {
      skipped.push({ group: g.name, reason: err instanceof Error ? err.message : String(err) });
      process.stderr.write(`bench: ${g.name} did not complete: ${skipped[skipped.length - 1].reason}\n`);
    }
    seconds[g.name] = Math.round((Date.now() - started) / 100) / 10;
    process.stderr.write(`bench: ${g.name}: ${seconds[g.name]} s\n`);
    figures.push(...bench.figures);
  }

  const resultsDir = path.join(root, 'bench', 'results');
  const paper = paperRows(figures, resultsDir);
  const run = { date: startedAt, revision: gitRevision(root), machine: host, figures, skipped, leftOut, paper, seconds };
  const localDir = path.join(resultsDir, 'local');
  mkdirSync(localDir, { recursive: true });
  const file = path.join(localDir, `${run.date.replace(/[:.]/g, '-')}-${run.revision}.json`);
  writeFileSync(file, JSON.stringify(run, null, 2) + '\n');
  writeFileSync(file.replace(/\.json$/, '.svg'), renderSvg(run));
  if (values.save) {
    writeFileSync(path.join(root, 'bench', 'results', 'latest.json'), JSON.stringify(run, null, 2) + '\n');
    writeFileSync(path.join(root, 'bench', 'results', 'latest.svg'), renderSvg(run));
    writeFileSync(path.join(root, 'bench', 'results', 'latest.md'), markdown(run));
  }

  const m = run.machine;
  process.stdout.write(`GRASS benchmarks, revision ${run.revision}, ${run.date}\n${m.cpu} × ${m.cpus}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, node ${m.node}, load ${m.loadAverage.toFixed(1)} at start\n\n`);
  process.stdout.write(table(figures) + '\n');
  const notes = figures.filter((f) => f.note);
  if (notes.length) process.stdout.write('\n' + notes.map((f) => `${f.id}: ${f.note}`).join('\n') + '\n');
  for (const s of skipped) process.stdout.write(`\nnot measured: ${s.group}: ${s.reason}\n`);
  process.stdout.write(`\nAgainst the paper (DESIGN.md §1):\n\n${paperTable(paper)}\n`);
  process.stderr.write(`bench: results in ${path.relative(root, file)} (and .svg)${values.save ? ', bench/results/latest.json and latest.svg' : ''}\n`);
  return skipped.length ? 1 : 0;
}

/** The run as Markdown (bench/results/latest.md with --save): what the README's performance section quotes. */
function markdown(run: { date: string; revision: string; machine: ReturnType<typeof machine>; figures: Figure[]; skipped: { group: string; reason: string }[]; paper: ReturnType<typeof paperRows>; seconds: Record<string, number>; leftOut: { group: string; long: string }[] }): string {
  const m = run.machine;
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = run.figures.map((f) => `| \`${f.id}\` | ${cell(f.label)} | ${f.unit} | ${formatValue(f.min)} | ${formatValue(f.median)} | ${f.values.length} | ${f.versus ? `${formatRatio(f.versus.ratio)}× \`${f.versus.id}\`` : ''} |`);
  return [
    `Revision \`${run.revision}\`, ${run.date}; ${m.cpu} × ${m.cpus}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, node ${m.node}, load ${m.loadAverage.toFixed(1)} at start; ` +
      `groups' wall time: ${Object.entries(run.seconds).map(([g, s]) => `${g} ${s} s`).join(', ')}.`,
    '',
    '| figure | what | unit | min | median | runs | vs (median ratio) |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...run.figures.filter((f) => f.note).map((f) => `- \`${f.id}\`: ${cell(f.note!)}`),
    ...run.skipped.map((s) => `- not measured: ${s.group}: ${s.reason}`),
    ...run.leftOut.map((g) => `- left out of this run (long; \`npm run bench -- --only ${g.group}\`): ${g.group}: ${g.long}`),
    '',
    '### Against the paper',
    '',
    paperTable(run.paper),
    '',
  ].join('\n');
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
