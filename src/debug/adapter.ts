// Debug adapter `grass`, inline in the extension host: the connected target's memory through
// the Debug Adapter Protocol, so memory viewers that speak DAP (the hex editor, the memory
// inspector extensions) work against the target. Only what those need: initialize, attach,
// configurationDone, threads, evaluate (an expression's address as a memoryReference),
// readMemory, writeMemory (offered only when the agent allows writes), disconnect.
// Memory references: a number or a kernel expression (kernel-virtual), `phys:ADDR` (physical),
// `pid:N:ADDR` (process N's user addresses).
import * as vscode from 'vscode';
import type { AddressSpace } from '../types/target';
import { TargetReadError } from '../types/target';
import { resolveKernelAddress } from '../session/addresses';
import type { LiveSession } from '../session/live-session';

/** The most one readMemory request returns (a viewer asks for a screenful at a time). */
export const MAX_DAP_READ_BYTES = 1 << 20;
const PAGE_BYTES = 4096;
const THREAD_ID = 1;

interface DapRequest {
  seq: number;
  type: 'request';
  command: string;
  arguments?: Record<string, unknown>;
}

/** The open session of the target an attach configuration names; with `connect`, connects to it when none is open. */
export type SessionForTarget = (target: string | undefined, connect: boolean) => Promise<LiveSession | undefined>;

export interface MemoryLocation {
  space: AddressSpace;
  address: bigint;
}

/** Parses a DAP memory reference (see the file comment); expressions need the kernel model. */
export async function resolveMemoryReference(session: LiveSession, reference: string, offset = 0): Promise<MemoryLocation> {
  const text = reference.trim();
  const phys = /^phys:(.+)$/.exec(text);
  const user = /^pid:(\d+):(.+)$/.exec(text);
  const number = (s: string): bigint => {
    if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(s.trim())) throw new Error(`'${s}' is not an address (0x… or decimal)`);
    return BigInt(s.trim());
  };
  let location: MemoryLocation;
  if (phys) location = { space: { kind: 'physical' }, address: number(phys[1]) };
  else if (user) location = { space: { kind: 'user', pid: Number(user[1]) }, address: number(user[2]) };
  else location = { space: { kind: 'kernel' }, address: (await resolveKernelAddress(await session.model(), text)).address };
  const address = location.address + BigInt(offset);
  if (address < 0n || address >= 1n << 64n) throw new Error(`${reference} + ${offset} is outside the 64-bit address space`);
  return { ...location, address };
}

function hex(address: bigint): string {
  return `0x${address.toString(16)}`;
}

/** Reads `count` bytes; on an unreadable byte, returns the readable pages before it. */
async function readReadablePrefix(session: LiveSession, space: AddressSpace, address: bigint, count: number): Promise<Uint8Array> {
  try {
    return await session.client.read(space, address, count);
  } catch (err) {
    if (!(err instanceof TargetReadError)) throw err;
  }
  const pieces: Uint8Array[] = [];
  let at = address;
  const end = address + BigInt(count);
  while (at < end) {
    const pageEnd = (at / BigInt(PAGE_BYTES) + 1n) * BigInt(PAGE_BYTES);
    const n = Number((pageEnd < end ? pageEnd : end) - at);
    try {
      pieces.push(await session.client.read(space, at, n));
    } catch (err) {
      if (err instanceof TargetReadError) break;
      throw err;
    }
    at += BigInt(n);
  }
  return Buffer.concat(pieces);
}

export class GrassDebugAdapter implements vscode.DebugAdapter {
  private readonly sent = new vscode.EventEmitter<vscode.DebugProtocolMessage>();
  readonly onDidSendMessage = this.sent.event;
  private seq = 1;
  private attachedTo: { target: string | undefined } | undefined;

  constructor(
    private readonly configuration: vscode.DebugConfiguration,
    private readonly sessionFor: SessionForTarget,
  ) {}

  handleMessage(message: vscode.DebugProtocolMessage): void {
    const request = message as DapRequest;
    if (request.type !== 'request') return;
    this.handle(request).then(
      (body) => this.respond(request, true, body),
      (err: Error) => this.respond(request, false, undefined, err.message),
    );
  }

  private respond(request: DapRequest, success: boolean, body?: unknown, message?: string): void {
    this.send({ type: 'response', request_seq: request.seq, command: request.command, success, ...(message ? { message } : {}), ...(body ? { body } : {}) });
    if (success && request.command === 'initialize') this.send({ type: 'event', event: 'initialized' });
  }

  private send(message: Record<string, unknown>): void {
    this.sent.fire({ seq: this.seq++, ...message } as vscode.DebugProtocolMessage);
  }

  /** The target's current session: the one attached to may have been closed and opened again since. */
  private async attached(): Promise<LiveSession> {
    if (!this.attachedTo) throw new Error('not attached to a target');
    const session = await this.sessionFor(this.attachedTo.target, false);
    if (!session) throw new Error(`not connected to ${this.attachedTo.target ?? 'the target'} any more (run "GRASS: Connect to Target…")`);
    return session;
  }

  private async handle(request: DapRequest): Promise<unknown> {
    const args = request.arguments ?? {};
    switch (request.command) {
      case 'initialize':
        // writeMemory is offered on attach (when the agent's flags are known), see below.
        return { supportsReadMemoryRequest: true, supportsWriteMemoryRequest: false, supportsConfigurationDoneRequest: true, supportsTerminateRequest: false };
      case 'attach': {
        const target = typeof this.configuration.target === 'string' ? this.configuration.target : undefined;
        const session = await this.sessionFor(target, true);
        if (!session) throw new Error(`cannot attach: not connected to ${target ? `target '${target}'` : 'a target'}`);
        this.attachedTo = { target: session.target.name };
        if (session.client.writesAllowed) this.send({ type: 'event', event: 'capabilities', body: { capabilities: { supportsWriteMemoryRequest: true } } });
        return undefined;
      }
      case 'launch':
        throw new Error("the grass debug type only attaches to a target (\"request\": \"attach\")");
      case 'configurationDone':
      case 'setExceptionBreakpoints':
        return undefined;
      case 'threads':
        return { threads: [{ id: THREAD_ID, name: `${(await this.attached()).target.name} (memory)` }] };
      case 'evaluate': {
        const expression = String(args.expression ?? '');
        const { space, address } = await resolveMemoryReference(await this.attached(), expression);
        const reference = space.kind === 'kernel' ? hex(address) : space.kind === 'physical' ? `phys:${hex(address)}` : `pid:${space.pid}:${hex(address)}`;
        return { result: reference, memoryReference: reference, variablesReference: 0 };
      }
      case 'readMemory':
        return this.readMemory(args);
      case 'writeMemory':
        return this.writeMemory(args);
      case 'disconnect':
        this.attachedTo = undefined;
        return undefined;
      default:
        throw new Error(`the grass debug adapter does not support '${request.command}'`);
    }
  }

  private async readMemory(args: Record<string, unknown>): Promise<unknown> {
    const session = await this.attached();
    const count = Number(args.count ?? 0);
    if (!Number.isInteger(count) || count < 0) throw new Error(`readMemory: count ${String(args.count)} is not a byte count`);
    const wanted = Math.min(count, MAX_DAP_READ_BYTES);
    const { space, address } = await resolveMemoryReference(session, String(args.memoryReference ?? ''), Number(args.offset ?? 0));
    const bytes = wanted === 0 ? new Uint8Array() : await readReadablePrefix(session, space, address, wanted);
    return { address: hex(address), data: Buffer.from(bytes).toString('base64'), unreadableBytes: count - bytes.length };
  }

  private async writeMemory(args: Record<string, unknown>): Promise<unknown> {
    const session = await this.attached();
    if (!session.client.writesAllowed) throw new Error(`writes are refused by ${session.target.name}'s agent (not started with --allow-writes)`);
    const { space, address } = await resolveMemoryReference(session, String(args.memoryReference ?? ''), Number(args.offset ?? 0));
    const data = Buffer.from(String(args.data ?? ''), 'base64');
    await session.client.write(space, address, data);
    return { offset: 0, bytesWritten: data.length };
  }

  dispose(): void {
    this.sent.dispose();
  }
}

/** Registers the `grass` debug type: an attach configuration names a target of `grass.targets`. */
export function registerDebugAdapter(sessionFor: SessionForTarget): vscode.Disposable {
  return vscode.debug.registerDebugAdapterDescriptorFactory('grass', {
    createDebugAdapterDescriptor: (debugSession) => new vscode.DebugAdapterInlineImplementation(new GrassDebugAdapter(debugSession.configuration, sessionFor)),
  });
}
