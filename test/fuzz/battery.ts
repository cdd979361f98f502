// The work run on each mutant, through the agent (its process-list, metrics and detection
// plugins, its translation) and through the TypeScript kernel model (BTF, symbols, tasks, log,
// modules, stacks, decode), each step's outcome classified. Runs in a worker thread
// (battery-worker.ts) so that a step stuck in a synchronous loop can be stopped from outside.
import { fetchDetections } from '../../src/detect/detections';
import { fetchMetrics } from '../../src/detect/metrics';
import { BtfError } from '../../src/kernel/btf/btf';
import { XzError } from '../../src/kernel/btf/xz';
import { extractFaultReports } from '../../src/kernel/log/faults';
import { PrintkLayoutError } from '../../src/kernel/log/layout';
import { KernelLogError, KernelLogReader } from '../../src/kernel/log/ringbuffer';
import { runningTasks } from '../../src/kernel/log/running';
import { KernelModel, KernelModelError } from '../../src/kernel/model';
import { listModules } from '../../src/kernel/modules/modules';
import { decodeExpression } from '../../src/kernel/objects/decode';
import type { ValueNode } from '../../src/types/decoded-value';
import { ExpressionError } from '../../src/kernel/objects/expression';
import { ObjectError } from '../../src/kernel/objects/object';
import { blockedTasks, stackTraces } from '../../src/kernel/stacks/stacks';
import { SymbolError } from '../../src/kernel/symbols/symbols';
import { TargetReadError, type TargetDescription } from '../../src/types/target';
import { listTasks } from '../../src/kernel/tasks/tasks';
import { GrassProtocolError, GrassStatusError, GrassTimeoutError } from '../../src/rdma/client';
import { connectTarget, type ProtocolSession } from '../../src/rdma/connect';
import { DescriptionError } from '../../src/rdma/protocol/description';
import { TransportError } from '../../src/rdma/transport';

/**
 * ok: the step finished; error: it failed with one of our errors (clean when the message names
 * an address or a location); crash: any other exception (TypeError, RangeError, ...);
 * hang: the agent stopped answering; dead: the transport failed (the agent is gone).
 */
export type StepStatus = 'ok' | 'error' | 'crash' | 'hang' | 'dead';

export interface StepOutcome {
  step: string;
  status: StepStatus;
  /** For errors: whether the message names where (an address, offset or type id). */
  named?: boolean;
  error?: string;
  ms: number;
  /** Non-fatal damage the step reported in its result (notes, per-member errors). */
  notes?: number;
}

export interface BatteryRequest {
  target: string;
  keyFile: string;
  /** A task to unwind (the task a mutant hit). */
  pid?: number;
  /** Unwind stacks on this mutant (costly: the ORC tables are read each time). */
  stacks: boolean;
  /** Read the metrics window (needs two samples of the monitor clock: not on a fresh agent). */
  metrics: boolean;
  /** Extra expressions to decode (the object a mutant hit). */
  decode: string[];
  /** The memory-leak detection must be active (the pristine image under the run's condition). */
  expectMemoryLeak?: boolean;
  /** A process's user address to read through its page tables (the agent finds its mm by walking the tasks). */
  userRead?: { pid: number; address: string };
  /** Steps left out (those that fail on the pristine image already). */
  skip?: string[];
}

const OUR_ERRORS = [TargetReadError, ObjectError, KernelLogError, PrintkLayoutError, ExpressionError, BtfError, XzError, SymbolError, KernelModelError,
  DescriptionError, GrassStatusError, GrassProtocolError];

/** An address (0x…), or a BTF type id / byte offset / record number: the error says where. */
const NAMES_A_PLACE = /0x[0-9a-f]+|\btype (id )?#?\d+|\boffset \d+|\brecord \d+|\bbyte \d+|\bsymbol \S+|\bCPU \d+/i;

export function classify(step: string, err: unknown, ms: number): StepOutcome {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : `non-Error thrown: ${String(err)}`;
  if (err instanceof GrassTimeoutError) return { step, status: 'hang', error: message, ms };
  if (err instanceof TransportError) return { step, status: 'dead', error: message, ms };
  const ours = OUR_ERRORS.some((E) => err instanceof E) || (err instanceof Error && err.constructor === Error && !/^internal:/.test(err.message));
  if (!ours) return { step, status: 'crash', error: message + (err instanceof Error && err.stack ? `\n${err.stack.split('\n').slice(1, 6).join('\n')}` : ''), ms };
  return { step, status: 'error', named: NAMES_A_PLACE.test(message), error: message, ms };
}

function countTreeErrors(node: ValueNode): number {
  return (node.error ? 1 : 0) + (node.children ?? []).reduce((n, c) => n + countTreeErrors(c), 0);
}

class BatteryStopped extends Error {}

export class Battery {
  private session?: ProtocolSession;
  private sessionTarget?: string;
  private description?: TargetDescription;
  private model?: KernelModel;

  async close(): Promise<void> {
    const s = this.session;
    this.session = this.sessionTarget = this.description = this.model = undefined;
    await s?.close().catch(() => undefined);
  }

  async run(req: BatteryRequest): Promise<StepOutcome[]> {
    const out: StepOutcome[] = [];
    const step = async (name: string, work: () => Promise<number | void>): Promise<boolean> => {
      if (req.skip?.includes(name)) return true;
      const started = Date.now();
      try {
        const notes = await work();
        out.push({ step: name, status: 'ok', ms: Date.now() - started, ...(notes ? { notes } : {}) });
        return true;
      } catch (err) {
        const outcome = classify(name, err, Date.now() - started);
        out.push(outcome);
        // The agent stopped answering or is gone: the later steps would only wait for it.
        if (outcome.status === 'hang' || outcome.status === 'dead') throw new BatteryStopped();
        return false;
      }
    };
    try {
      await this.steps(req, step);
    } catch (err) {
      if (!(err instanceof BatteryStopped)) throw err;
    }
    return out;
  }

  private async steps(req: BatteryRequest, step: (name: string, work: () => Promise<number | void>) => Promise<boolean>): Promise<void> {
    if (this.sessionTarget !== req.target) {
      await this.close();
      const attached = await step('attach', async () => {
        this.session = await connectTarget(req.target, { keyFile: req.keyFile, timeoutMs: 5000 });
        this.sessionTarget = req.target;
      });
      if (!attached) return;
      await step('describe', async () => {
        this.description = await this.session!.client.describe();
      });
      if (this.description) await step('model', async () => void (this.model = KernelModel.fromDescription(this.description!, this.session!.client)));
    }
    const client = this.session!.client;
    await step('agent ps', async () => void (await client.processList({ threads: true })));
    await step('agent detect', async () => {
      const detections = await fetchDetections(client);
      // The run holds the memory-leak condition (fuzzer.ts), so on the pristine image the
      // detector must be active: then it walks the tasks of each mutant in memory at a window.
      const leak = detections.find((d) => d.detector === 'memory-leak');
      if (req.expectMemoryLeak && !leak?.active) throw new Error(`the memory-leak detector is not active under its condition: ${JSON.stringify(leak)}`);
      return detections.filter((d) => d.error).length;
    });
    const user = req.userRead;
    if (user) await step('agent user read', async () => void (await client.read({ kind: 'user', pid: user.pid }, BigInt(user.address), 16)));
    if (req.metrics) await step('agent metrics', async () => void (await fetchMetrics(client)));
    const description = this.description;
    if (description) {
      await step('log', async () => {
        const log = await new KernelLogReader(client, description, this.model?.btf).read();
        extractFaultReports(log.records);
        return log.notes.length;
      });
    }
    const model = this.model;
    if (!model) return;
    await step('ps', async () => void (await listTasks(model, { threads: true, idle: true })));
    await step('decode', async () => {
      let errors = 0;
      for (const expr of ['init_task', 'per_cpu(runqueues, 0)', ...req.decode]) errors += countTreeErrors(await decodeExpression(model, expr));
      return errors;
    });
    await step('running', async () => (await runningTasks(model)).filter((r) => 'error' in r).length);
    await step('modules', async () => void (await listModules(model)));
    if (req.stacks) {
      await step('stacks', async () => {
        if (req.pid !== undefined && req.pid > 0) await stackTraces(model, [req.pid]);
        else await blockedTasks(model);
      });
    }
  }
}
