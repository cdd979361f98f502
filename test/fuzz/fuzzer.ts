// The corrupt-kernel-memory fuzzer: a real guest's memory image, mutants written into it (see
// mutations.ts), the agent and the kernel model run on each, every outcome classified and counted.
//
// runtime mutants are written under one running agent (it maps the image file shared, so it reads
// each mutant at once); discovery mutants are written before a fresh agent starts. Each mutant has
// a deadline; the battery runs in a worker thread that is terminated when it passes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { KernelModel } from '../../src/kernel/model';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { agentBinary } from '../../src/rdma/local-agent';
import type { BatteryRequest, StepOutcome } from './battery';
import { FuzzImage } from './image';
import { locate } from './locate';
import { kdumpMutant, kdumpParts, writeKdumpMutant } from './kdump-mutations';
import { MutantFactory, type Mutant, type MutantMode } from './mutations';
import { saveVmcore } from '../../src/vmcore/save';

export interface FuzzOptions {
  seed: number;
  runtimeMutants: number;
  discoveryMutants: number;
  /** Mutants of a kdump-compressed file of the image (save-vmcore --format kdump), after the others. */
  kdumpMutants?: number;
  /** Unwind stacks on every Nth mutant (1: all); the ORC tables are read each time. */
  stacksEvery: number;
  /** A mutant still running after this long counts as a hang. */
  mutantDeadlineMs: number;
  /** Progress lines (one per failing mutant, and a heartbeat every 50). */
  log: (line: string) => void;
  /** Only these mutant indices (reproducing a failure); the counts still bound the index range. */
  only?: number[];
  /** The agent binary (default: GRASS_AGENT_BIN, else gpu/build/grass-agent), e.g. a sanitizer build. */
  agentBinary?: string;
  /** Keep the captured image in this folder, or reuse the one kept there (exact reproduction). */
  keepImage?: string;
}

/** served: every step finished; clean-error: every failure named what and where; the rest fail the run. */
export type Verdict = 'served' | 'clean-error' | 'unnamed-error' | 'crash' | 'hang';

export interface MutantResult {
  mutant: Pick<Mutant, 'index' | 'family' | 'mode' | 'what'>;
  verdict: Verdict;
  /** The agent's own fate: exit status or signal, or how discovery refused the image. */
  agent?: string;
  steps: StepOutcome[];
  ms?: number;
}

export interface FuzzSummary {
  seed: number;
  image: string;
  mutants: number;
  counts: Record<Verdict, number>;
  byFamily: Record<string, Record<Verdict, number>>;
  /** Per step: how often it failed cleanly (what the mutants reached). */
  stepErrors: Record<string, number>;
  failures: MutantResult[];
  results: MutantResult[];
  /** Examples of clean errors, one per family and step. */
  examples: string[];
  imageRestored: boolean;
  /** Steps that failed on the pristine image (each fails the run). */
  baselineFailures: string[];
  /** A stopped agent not judged a hang, or a killed one not a crash (each fails the run). */
  selfCheckFailures: string[];
  line: string;
}

const emptyCounts = (): Record<Verdict, number> => ({ served: 0, 'clean-error': 0, 'unnamed-error': 0, crash: 0, hang: 0 });
/** Discovery errors name what and where: an address, a symbol, a VMCOREINFO key, BTF or kallsyms. */
const DISCOVERY_NAMES_A_PLACE = /0x[0-9a-f]+|VMCOREINFO|BTF|kallsyms|banner|\bsymbol\b|page table|phys_base|OSRELEASE|PAGESIZE/i;

interface AgentProcess {
  child: ChildProcess;
  target: string;
  shmPath: string;
  ready?: Record<string, unknown>;
  stderr: string;
  exited: Promise<void>;
  /** What ended it ('status 1', 'SIGSEGV'), once it has. */
  fate?: string;
}

/** Starts the agent binary; resolves when it is ready or has ended (fate set), or at the deadline. */
async function spawnAgent(binary: string, memory: string[], keyFile: string, shmPath: string, deadlineMs: number): Promise<AgentProcess | { hang: string; stderr: string }> {
  const child = spawn(binary, [...memory, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A sanitizer build (make -C gpu asan) stops at its first report with a status of its own;
    // leaks at exit are no memory error.
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:exitcode=86', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1:exitcode=86' },
  });
  const agent: AgentProcess = { child, target: `shm:${shmPath}`, shmPath, stderr: '', exited: Promise.resolve() };
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (agent.stderr = (agent.stderr + c).slice(-8000)));
  agent.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    agent.fate = signal ?? `status ${code}`;
    resolve();
  }));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<boolean | 'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), deadlineMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        agent.ready = JSON.parse(line) as Record<string, unknown>;
        resolve(true);
      } catch {
        resolve(false);
      }
    });
    void agent.exited.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  child.stdout!.resume();
  if (ready === 'timeout') {
    child.kill('SIGKILL');
    await agent.exited;
    fs.rmSync(shmPath, { force: true });
    return { hang: `discovery did not finish within ${deadlineMs} ms`, stderr: agent.stderr };
  }
  if (!ready) await agent.exited;
  return agent;
}

async function stopAgent(agent: AgentProcess): Promise<void> {
  if (agent.fate === undefined) {
    agent.child.kill('SIGTERM');
    const killer = setTimeout(() => agent.child.kill('SIGKILL'), 5000);
    await agent.exited;
    clearTimeout(killer);
  }
  fs.rmSync(agent.shmPath, { force: true });
}

/** The battery's worker thread, restarted after a hang. */
class BatteryWorker {
  private worker = this.start();

  private start(): Worker {
    // Workers do not inherit tsx's loader hooks: register them in the worker first.
    const entry = path.join(__dirname, 'battery-worker.ts');
    return new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(entry)});`, { eval: true });
  }

  /** The steps, or 'deadline' (the worker was terminated), or 'died' with the worker's error. */
  run(req: BatteryRequest, deadlineMs: number): Promise<StepOutcome[] | { deadline: true } | { died: string }> {
    return new Promise((resolve) => {
      const w = this.worker;
      const done = (r: StepOutcome[] | { deadline: true } | { died: string }): void => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('error', onError);
        resolve(r);
      };
      const onMessage = (m: StepOutcome[]): void => done(m);
      const onError = (err: Error): void => {
        this.worker = this.start();
        done({ died: err.stack ?? err.message });
      };
      const timer = setTimeout(() => {
        void w.terminate();
        this.worker = this.start();
        done({ deadline: true });
      }, deadlineMs);
      w.on('message', onMessage);
      w.once('error', onError);
      w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.worker.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage('close');
    });
    await this.worker.terminate();
  }
}

/** The verdict of a battery run under an agent (the runtime one, or a fresh one that started). */
function judgeRuntime(mutant: MutantResult['mutant'], agent: AgentProcess, r: StepOutcome[] | { deadline: true } | { died: string }, deadlineMs: number): MutantResult {
  const steps: StepOutcome[] = Array.isArray(r)
    ? r
    : 'deadline' in r
      ? [{ step: 'battery', status: 'hang', error: `not done within ${deadlineMs} ms`, ms: deadlineMs }]
      : [{ step: 'battery', status: 'crash', error: r.died, ms: 0 }];
  if (agent.fate !== undefined) return { mutant, verdict: 'crash', agent: `agent ended (${agent.fate}): ${agent.stderr.trim().split('\n').slice(-3).join(' | ')}`, steps };
  return { mutant, verdict: verdictOf(steps), steps };
}

function verdictOf(steps: StepOutcome[]): Verdict {
  if (steps.some((s) => s.status === 'crash' || s.status === 'dead')) return 'crash';
  if (steps.some((s) => s.status === 'hang')) return 'hang';
  const errors = steps.filter((s) => s.status === 'error');
  if (errors.length === 0) return 'served';
  return errors.every((s) => s.named) ? 'clean-error' : 'unnamed-error';
}

/**
 * The kdump family: the image saved as a kdump-compressed file (zstd pages, every page), which a
 * fresh agent must serve with the battery clean; then each mutant of that file (header and
 * sub-header fields, bitmaps, descriptors, compressed pages, a cut) to a fresh agent, judged as
 * a discovery mutant: served, or refused naming the file or a place, never a crash or hang.
 */
async function kdumpMutants(run: {
  options: FuzzOptions;
  dir: string;
  runtimeAgent: AgentProcess;
  keyFile: string;
  binary: string;
  worker: BatteryWorker;
  nextShm: () => string;
  userRead: BatteryRequest['userRead'];
  skip: string[];
  firstIndex: number;
  baselineFailures: string[];
}): Promise<MutantResult[]> {
  const { options, dir, keyFile, binary, worker, nextShm, userRead, skip } = run;
  const pristine = path.join(dir, 'image.kdump');
  const session = await connectTarget(run.runtimeAgent.target, { keyFile, timeoutMs: 10_000 });
  try {
    await saveVmcore(session.client, pristine, { format: 'kdump' });
  } finally {
    await session.close();
  }
  const parts = kdumpParts(pristine);
  const fd = fs.openSync(pristine, 'r');
  const read = (at: number, n: number): Buffer => {
    const b = Buffer.alloc(n);
    fs.readSync(fd, b, 0, n, at);
    return b;
  };
  const results: MutantResult[] = [];
  const serve = async (file: string, brief: MutantResult['mutant']): Promise<MutantResult> => {
    const agent = await spawnAgent(binary, ['--memory', `vmcore:${file}`], keyFile, nextShm(), options.mutantDeadlineMs);
    if ('hang' in agent) return { mutant: brief, verdict: 'hang', agent: agent.hang, steps: [] };
    if (!agent.ready) {
      const lastLine = agent.stderr.trim().split('\n').pop() ?? '';
      const refused = agent.fate === 'status 1' && /^grass-agent: /.test(lastLine);
      const named = lastLine.includes(file) || DISCOVERY_NAMES_A_PLACE.test(lastLine);
      return { mutant: brief, verdict: !refused ? 'crash' : named ? 'clean-error' : 'unnamed-error', agent: `discovery refused the image (${agent.fate}): ${lastLine}`, steps: [] };
    }
    const r = await worker.run({ target: agent.target, keyFile, stacks: false, metrics: false, decode: [], userRead, skip }, options.mutantDeadlineMs);
    let result = judgeRuntime(brief, agent, r, options.mutantDeadlineMs);
    const served = agent.fate === undefined;
    await stopAgent(agent);
    if (served && agent.fate !== 'status 0' && result.verdict !== 'crash') result = { ...result, verdict: 'crash', agent: `agent ended (${agent.fate}) when stopped: ${agent.stderr.trim().split('\n').slice(-3).join(' | ')}` };
    return result;
  };
  try {
    const base = await serve(pristine, { index: -1, family: 'kdump-pristine', mode: 'kdump', what: `the image as a kdump file (${parts.bytes} bytes, ${parts.descriptors} pages)` });
    for (const s of base.steps) if (s.status !== 'ok') run.baselineFailures.push(`kdump file: ${s.step}: ${s.status} ${s.error ?? ''}`);
    if (base.verdict !== 'served') run.baselineFailures.push(`kdump file: ${base.verdict} ${base.agent ?? ''}`);
    const mutant = path.join(dir, 'mutant.kdump');
    for (let j = 0; j < (options.kdumpMutants ?? 0); j++) {
      const index = run.firstIndex + j;
      if (options.only && !options.only.includes(index)) continue;
      const m = kdumpMutant(options.seed, index, parts, read);
      const started = Date.now();
      writeKdumpMutant(pristine, mutant, m);
      const result = await serve(mutant, { index, family: m.family, mode: 'kdump', what: m.what });
      result.ms = Date.now() - started;
      results.push(result);
      if (result.verdict !== 'served' && result.verdict !== 'clean-error') options.log(`fuzz: mutant ${index} (${m.family}) ${result.verdict}: ${m.what}\n  ${result.agent ?? ''}`);
    }
    fs.rmSync(mutant, { force: true });
  } finally {
    fs.closeSync(fd);
    fs.rmSync(pristine, { force: true });
    fs.rmSync(`${pristine}.manifest.json`, { force: true });
  }
  return results;
}

function hashFile(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.alloc(1 << 22);
  for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0; ) h.update(chunk.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const dir = fs.mkdtempSync(`/dev/shm/grass-fuzz-${process.pid}-`);
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  // Interrupted: the image copy goes too, then the signal does what it would have done.
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanup();
    process.kill(process.pid, signal);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: MutantResult[] = [];
  let image: FuzzImage | undefined;
  let worker: BatteryWorker | undefined;
  let runtimeAgent: AgentProcess | undefined;
  let imageRestored = false;
  const baselineFailures: string[] = [];
  const selfCheckFailures: string[] = [];
  try {
    let phase = Date.now();
    const lap = (what: string): void => {
      options.log(`fuzz: ${what} took ${Date.now() - phase} ms`);
      phase = Date.now();
    };
    image = await FuzzImage.captureOrReuse(dir, options.keepImage);
    lap('capturing the guest image');
    const pristine = hashFile(image.ramFile);
    const binary = options.agentBinary ?? agentBinary();
    const keyFile = path.join(dir, 'key');
    writeNewKeyFile(keyFile);
    let agents = 0;
    const nextShm = (): string => path.join(dir, `buffer-${agents++}`);
    const imageMemory = ['--memory', `qemu-ram:${image.ramFile}`, '--memory-map', image.mapFile];
    const startRuntimeAgent = async (): Promise<AgentProcess> => {
      const a = await spawnAgent(binary, imageMemory, keyFile, nextShm(), 60_000);
      if ('hang' in a || !a.ready) throw new Error(`fuzz: the agent does not start on the pristine image: ${'hang' in a ? a.hang : a.fate}: ${a.stderr}`);
      return a;
    };
    runtimeAgent = await startRuntimeAgent();

    // Where everything is, from the real model on the pristine image.
    const session = await connectTarget(runtimeAgent.target, { keyFile, timeoutMs: 10_000 });
    const description = await session.client.describe();
    const model = KernelModel.fromDescription(description, session.client);
    const { located, translator } = await locate(model, description, image);
    await session.close();
    lap('starting the agent and locating the objects');
    const factory = new MutantFactory(located, translator, image.physEnd, description.pageOffsetBase, options.seed);
    options.log(`fuzz: image ${image.bootDescription}; ${located.tasks.length} tasks, ${located.modules.length - 1} modules, ${located.tablePaths.length} page-table paths, ${located.vmcoreinfo.length} VMCOREINFO copies`);

    // Free RAM set to one page for the whole run: the memory-leak detector's condition holds
    // (the guest has no swap), so every metrics window of the monitor walks the task list of
    // whichever mutant is in memory then, as the detector would on a real leak.
    const onePage = Buffer.alloc(located.freePages.size);
    onePage.writeUInt8(1);
    image.applyForRun([{ phys: translator.phys(located.freePages.va), bytes: onePage }]);
    await new Promise((r) => setTimeout(r, 2500));

    worker = new BatteryWorker();
    const userRead = { pid: located.userRead.pid, address: `0x${located.userRead.address.toString(16)}` };
    // The pristine image must be served without a single error. A step that fails there is
    // reported (the run fails) and left out of the mutants, whose counts would only repeat it.
    const baseline = await worker.run({ target: runtimeAgent.target, keyFile, stacks: true, metrics: true, decode: [], userRead, expectMemoryLeak: true }, 60_000);
    if (!Array.isArray(baseline)) throw new Error(`fuzz: the battery does not finish on the pristine image: ${JSON.stringify(baseline)}`);
    for (const s of baseline) if (s.status !== 'ok' || s.notes) baselineFailures.push(`${s.step}: ${s.status} ${s.error ?? `${s.notes} notes`}`);
    const skip = baseline.filter((s) => s.status !== 'ok' || s.notes).map((s) => s.step);
    lap('the battery on the pristine image');
    if (skip.length) options.log(`fuzz: on the pristine image already: ${baselineFailures.join('; ')}`);

    // The classifier itself: an agent that stops answering must come out as a hang, one that
    // dies as a crash (else a run could pass because nothing was ever judged a failure).
    for (const [signal, want] of [['SIGSTOP', 'hang'], ['SIGKILL', 'crash']] as const) {
      const agent = runtimeAgent;
      agent.child.kill(signal);
      if (signal === 'SIGKILL') await agent.exited;
      const r = await worker.run({ target: agent.target, keyFile, stacks: false, metrics: true, decode: [], userRead, skip }, options.mutantDeadlineMs);
      const got = judgeRuntime({ index: -1, family: 'self-check', mode: 'runtime', what: signal }, agent, r, options.mutantDeadlineMs).verdict;
      if (got !== want) selfCheckFailures.push(`an agent sent ${signal} was judged '${got}', not '${want}'`);
      if (signal === 'SIGSTOP') agent.child.kill('SIGCONT');
      await stopAgent(agent);
      runtimeAgent = await startRuntimeAgent();
    }
    lap('the self-check (an agent stopped, then killed)');

    const wanted = (i: number): boolean => !options.only || options.only.includes(i);
    const total = options.runtimeMutants + options.discoveryMutants;
    for (let index = 0; index < total; index++) {
      if (!wanted(index)) continue;
      const mode: MutantMode = index < options.runtimeMutants ? 'runtime' : 'discovery';
      const mutant = factory.make(index, mode);
      const stacks = index % options.stacksEvery === 0;
      const decode = mutant.pid !== undefined ? [`*(struct task_struct *)0x${located.tasks.find((t) => t.pid === mutant.pid)!.va.toString(16)}`] : [];
      const started = Date.now();
      image.apply(mutant.writes);
      let result: MutantResult;
      const brief = { index, family: mutant.family, mode, what: mutant.what };
      if (mode === 'runtime') {
        const agent = runtimeAgent!;
        const r = await worker.run({ target: agent.target, keyFile, pid: mutant.pid, stacks, metrics: true, decode, userRead, skip }, options.mutantDeadlineMs);
        result = judgeRuntime(brief, agent, r, options.mutantDeadlineMs);
        image.restore();
        // A dead or stuck agent is replaced, on the restored image.
        if (result.verdict === 'crash' || result.verdict === 'hang') {
          await stopAgent(agent);
          runtimeAgent = await startRuntimeAgent();
        }
      } else {
        const agent = await spawnAgent(binary, imageMemory, keyFile, nextShm(), options.mutantDeadlineMs);
        if ('hang' in agent) {
          result = { mutant: brief, verdict: 'hang', agent: agent.hang, steps: [] };
        } else if (!agent.ready) {
          const lastLine = agent.stderr.trim().split('\n').pop() ?? '';
          const refused = agent.fate === 'status 1' && /^grass-agent: /.test(lastLine);
          result = {
            mutant: brief,
            verdict: !refused ? 'crash' : DISCOVERY_NAMES_A_PLACE.test(lastLine) ? 'clean-error' : 'unnamed-error',
            agent: `discovery refused the image (${agent.fate}): ${lastLine}`,
            steps: [],
          };
        } else {
          const r = await worker.run({ target: agent.target, keyFile, pid: mutant.pid, stacks, metrics: false, decode, userRead, skip }, options.mutantDeadlineMs);
          result = judgeRuntime(brief, agent, r, options.mutantDeadlineMs);
        }
        if (!('hang' in agent) && agent.fate === undefined) {
          // A served agent must also stop cleanly (a sanitizer build reports at exit too).
          await stopAgent(agent);
          if (agent.fate !== 'status 0' && result.verdict !== 'crash') {
            result = { ...result, verdict: 'crash', agent: `agent ended (${agent.fate}) when stopped: ${agent.stderr.trim().split('\n').slice(-3).join(' | ')}` };
          }
        } else if (!('hang' in agent)) {
          await stopAgent(agent);
        }
        image.restore();
      }
      result.ms = Date.now() - started;
      results.push(result);
      if (result.verdict !== 'served' && result.verdict !== 'clean-error') {
        options.log(`fuzz: mutant ${index} (${mutant.family}) ${result.verdict}: ${mutant.what}\n  ${result.agent ?? ''}\n  ${result.steps.filter((s) => s.status !== 'ok').map((s) => `${s.step}: ${s.status} ${s.error ?? ''}`).join('\n  ')}`);
      }
      if ((index + 1) % 50 === 0) options.log(`fuzz: ${index + 1}/${total} mutants`);
    }
    if (options.kdumpMutants) {
      results.push(...(await kdumpMutants({ options, dir, runtimeAgent: runtimeAgent!, keyFile, binary, worker, nextShm, userRead, skip, firstIndex: total, baselineFailures })));
    }
    image.restoreAll();
    imageRestored = hashFile(image.ramFile) === pristine;
  } finally {
    await worker?.close();
    if (runtimeAgent) await stopAgent(runtimeAgent);
    image?.close();
    cleanup();
    process.off('exit', cleanup);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { ...summarise(options.seed, image?.bootDescription ?? '', results, imageRestored, baselineFailures), selfCheckFailures };
}

function summarise(seed: number, imageText: string, results: MutantResult[], imageRestored: boolean, baselineFailures: string[]): Omit<FuzzSummary, 'selfCheckFailures'> {
  const counts = emptyCounts();
  const byFamily: Record<string, Record<Verdict, number>> = {};
  const stepErrors: Record<string, number> = {};
  const examples = new Map<string, string>();
  for (const r of results) {
    counts[r.verdict]++;
    (byFamily[r.mutant.family] ??= emptyCounts())[r.verdict]++;
    if (r.agent?.startsWith('discovery refused')) {
      stepErrors.discovery = (stepErrors.discovery ?? 0) + 1;
      if (!examples.has(`${r.mutant.family}/discovery`)) examples.set(`${r.mutant.family}/discovery`, `${r.mutant.what} → ${r.agent}`);
    }
    for (const s of r.steps) {
      if (s.status !== 'error') continue;
      stepErrors[s.step] = (stepErrors[s.step] ?? 0) + 1;
      if (!examples.has(`${r.mutant.family}/${s.step}`)) examples.set(`${r.mutant.family}/${s.step}`, `${r.mutant.what} → ${s.step}: ${s.error}`);
    }
  }
  const failures = results.filter((r) => r.verdict !== 'served' && r.verdict !== 'clean-error');
  const line = `fuzz: ${results.length} mutants, ${counts.crash} crashes, ${counts.hang} hangs, ${counts['clean-error']} clean errors, ${counts['unnamed-error']} unnamed errors, ${counts.served} served (seed ${seed}; GRASS_FUZZ_SEED=${seed} reproduces)`;
  return { seed, image: imageText, mutants: results.length, counts, byFamily, stepErrors, failures, results, examples: [...examples.values()], imageRestored, baselineFailures, line };
}

