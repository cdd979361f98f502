// npm run bench: runs the figure groups of bench/figures/ in one process (every group but the long
// ones; --all: every group; --only A,B: those named), prints a table and writes the run as JSON
// and an SVG plot under bench/results/local/ (and to bench/results/latest.{json,svg,md} with
// --save: the copy the README quotes, whose performance block --save rewrites from the run).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
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
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim() + (process.env.GRASS_BENCH_PEERS === '1' ? ' (GRASS_BENCH_PEERS=1)' : '');
  const run = { date: startedAt, revision: gitRevision(root), machine: host, loadAverageEnd: os.loadavg()[0], command, figures, skipped, leftOut, paper, seconds };
  const localDir = path.join(resultsDir, 'local');
  mkdirSync(localDir, { recursive: true });
  const file = path.join(localDir, `${run.date.replace(/[:.]/g, '-')}-${run.revision}.json`);
  writeFileSync(file, JSON.stringify(run, null, 2) + '\n');
  writeFileSync(file.replace(/\.json$/, '.svg'), renderSvg(run));
  if (values.save) {
    writeFileSync(path.join(root, 'bench', 'results', 'latest.json'), JSON.stringify(run, null, 2) + '\n');
    writeFileSync(path.join(root, 'bench', 'results', 'latest.svg'), renderSvg(run));
    writeFileSync(path.join(root, 'bench', 'results', 'latest.md'), markdown(run));
    const readme = path.join(root, 'README.md');
    writeFileSync(readme, withReadmeBlock(readFileSync(readme, 'utf8'), run));
  }

  const m = run.machine;
  process.stdout.write(`GRASS benchmarks, revision ${run.revision}, ${run.date}\n${m.cpu} × ${m.cpus}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, node ${m.node}, load ${m.loadAverage.toFixed(1)} at start\n\n`);
  process.stdout.write(table(figures) + '\n');
  const notes = figures.filter((f) => f.note);
  if (notes.length) process.stdout.write('\n' + notes.map((f) => `${f.id}: ${f.note}`).join('\n') + '\n');
  for (const s of skipped) process.stdout.write(`\nnot measured: ${s.group}: ${s.reason}\n`);
  process.stdout.write(`\nAgainst the paper (DESIGN.md §1):\n\n${paperTable(paper)}\n`);
  process.stderr.write(`bench: results in ${path.relative(root, file)} (and .svg)${values.save ? ', bench/results/latest.{json,md,svg} and the README\'s performance block' : ''}\n`);
  return skipped.length ? 1 : 0;
}

type Run = { date: string; revision: string; machine: ReturnType<typeof machine>; loadAverageEnd: number; command: string; figures: Figure[]; skipped: { group: string; reason: string }[]; paper: ReturnType<typeof paperRows>; seconds: Record<string, number>; leftOut: { group: string; long: string }[] };

const README_BEGIN = '<!-- bench:begin: written by `npm run bench -- --save` from its run; edits here are overwritten -->';
const README_END = '<!-- bench:end -->';

/**
 * The README's performance block from this run alone, so no figure there comes from anywhere
 * else: the figures measured against a floor or a peer (the claims), the plot, the paper table.
 */
function withReadmeBlock(readme: string, run: Run): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no performance block (${README_BEGIN} … ${README_END})`);
  const m = run.machine;
  const minutes = Object.values(run.seconds).reduce((a, b) => a + b, 0) / 60;
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const claims = run.figures.filter((f) => f.versus).map((f) =>
    `| \`${f.id}\` | ${cell(f.label)} | ${formatValue(f.min)} ${f.unit} | ${formatValue(f.median)} ${f.unit} | ${formatRatio(f.versus!.ratio)}× \`${f.versus!.id}\` |`);
  const block = [
    README_BEGIN,
    `The run below: revision \`${run.revision}\`, started ${run.date}, \`${run.command}\`, ${minutes.toFixed(1)} min of groups. ` +
      `Machine: ${m.cpu} × ${m.cpus}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, node ${m.node}; ` +
      `load average ${m.loadAverage.toFixed(1)} at the start, ${run.loadAverageEnd.toFixed(1)} at the end.` +
      (run.skipped.length ? ` Not measured: ${run.skipped.map((s) => `${s.group} (${cell(s.reason)})`).join('; ')}.` : '') +
      (run.leftOut.length ? ` Left out (long): ${run.leftOut.map((g) => g.group).join(', ')}.` : ''),
    '',
    `Each figure measured next to its floor or peer in the same run (all ${run.figures.length} figures with their notes: [bench/results/latest.md](bench/results/latest.md)):`,
    '',
    '| figure | what | min | median | vs its floor / peer (median ratio) |',
    '|---|---|---|---|---|',
    ...claims,
    '',
    '![bench/results/latest.svg: every figure of the run, log scale, bar = median, tick = min](bench/results/latest.svg)',
    '',
    '### Against the paper',
    '',
    paperTable(run.paper),
    README_END,
  ].join('\n');
  return readme.slice(0, begin) + block + readme.slice(end + README_END.length);
}

/** The run as Markdown (bench/results/latest.md with --save): what the README's performance section quotes. */
function markdown(run: Run): string {
  const m = run.machine;
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = run.figures.map((f) => `| \`${f.id}\` | ${cell(f.label)} | ${f.unit} | ${formatValue(f.min)} | ${formatValue(f.median)} | ${f.values.length} | ${f.versus ? `${formatRatio(f.versus.ratio)}× \`${f.versus.id}\`` : ''} |`);
  return [
    `Revision \`${run.revision}\`, ${run.date}, \`${run.command}\`; ${m.cpu} × ${m.cpus}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, node ${m.node}, load ${m.loadAverage.toFixed(1)} at start, ${run.loadAverageEnd.toFixed(1)} at the end; ` +
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
