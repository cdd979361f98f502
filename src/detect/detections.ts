// The agent's CPU-high-load and memory-leak detectors (GRASS_OP_DETECT): their latest state as
// the monitor evaluated it on its own clock.
import type { GrassClient } from '../rdma/client';
import * as L from '../rdma/protocol/layout';
import { cString, dataCrc32 } from '../rdma/protocol/codec';

export type DetectorName = 'cpu-high-load' | 'memory-leak';

export interface Culprit {
  pid: number;
  comm: string;
  /** CPU used over the condition's span, in percent of one CPU (CPU high load). */
  cpuPercent: number;
  rssBytes: number;
}

export interface Detection {
  detector: DetectorName;
  /** Detected, and the condition still held at the last evaluation. */
  active: boolean;
  /** Monitor-clock seconds: of the latest detection (null: never), since the condition holds (null: it does not), of the last evaluation. */
  detectedAt: number | null;
  holdsSince: number | null;
  evaluatedAt: number;
  /** Why the last evaluation could not read the target, if it could not. */
  error: string | null;
  figures: Record<string, number>;
  culprits: Culprit[];
}

const names: Record<number, DetectorName> = { [L.DETECT_CPU_HIGH_LOAD]: 'cpu-high-load', [L.DETECT_MEMORY_LEAK]: 'memory-leak' };

export function decodeDetections(bytes: Uint8Array): Detection[] {
  const size = L.detection.size;
  if (bytes.length !== size * L.DETECTORS) throw new Error(`detection reply of ${bytes.length} bytes, expected ${L.DETECTORS} records of ${size}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = L.detection.fields;
  const cf = L.detectCulprit.fields;
  const out: Detection[] = [];
  for (let base = 0; base < bytes.length; base += size) {
    const kind = v.getUint32(base + f.kind.offset, true);
    const seconds = (o: number): number => Number(v.getBigUint64(base + o, true)) / 1e9;
    const value = (i: number): number => Number(v.getBigUint64(base + f.values.offset + 8 * i, true));
    const status = v.getUint32(base + f.status.offset, true);
    const count = Math.min(v.getUint32(base + f.culprit_count.offset, true), L.DETECT_CULPRITS);
    const culprits: Culprit[] = [];
    for (let k = 0; k < count; k++) {
      const c = base + f.culprits.offset + k * L.detectCulprit.size;
      culprits.push({
        pid: v.getInt32(c + cf.pid.offset, true),
        comm: cString(bytes.subarray(c + cf.comm.offset, c + cf.comm.offset + cf.comm.size)),
        cpuPercent: v.getUint32(c + cf.cpu_permille.offset, true) / 10,
        rssBytes: Number(v.getBigUint64(c + cf.rss_bytes.offset, true)),
      });
    }
    const detector = names[kind];
    if (!detector) {
      if (kind === 0) continue; // not evaluated yet (no metrics window)
      throw new Error(`detection record of unknown kind ${kind}`);
    }
    const figures: Record<string, number> =
      detector === 'cpu-high-load'
        ? { leastBusyCpuPercent: value(0) / 10, leastBusyCpu: value(1), spanSeconds: value(2) / 1e9 }
        : { memFreeBytes: value(0), memTotalBytes: value(1), swapFreeBytes: value(2), swapTotalBytes: value(3) };
    out.push({
      detector,
      active: v.getUint32(base + f.active.offset, true) === 1,
      detectedAt: v.getBigUint64(base + f.detected_ns.offset, true) === 0n ? null : seconds(f.detected_ns.offset),
      holdsSince: v.getBigUint64(base + f.since_ns.offset, true) === 0n ? null : seconds(f.since_ns.offset),
      evaluatedAt: seconds(f.evaluated_ns.offset),
      error: status === L.Status.Ok ? null : `${L.Status[status] ?? status} at 0x${v.getBigUint64(base + f.detail.offset, true).toString(16)}`,
      figures: v.getBigUint64(base + f.detected_ns.offset, true) === 0n ? {} : figures,
      culprits,
    });
  }
  return out;
}

export async function fetchDetections(client: GrassClient): Promise<Detection[]> {
  const { data } = await client.call(L.Opcode.Detect, []);
  return decodeDetections(data);
}

/**
 * Background mode: the results the monitor republishes in the header's background area after
 * every evaluation, read with no request (seqlock: version, block, version; CRC checked), so
 * they can be read while the monitor's request handling is stuck or slow.
 */
export async function readBackgroundDetections(client: GrassClient, timeoutMs = 3000): Promise<Detection[]> {
  const h = L.bufferHeader.fields;
  const transport = client.transport;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const version = await transport.readWord(h.background_version.offset);
    if (version === 0n) throw new Error(`${transport.name}: no background results yet (the detectors run after the monitor's first two metrics samples)`);
    if (version % 2n === 0n) {
      const fields = await transport.read(h.background_offset.offset, h.reserved0.offset - h.background_offset.offset);
      const v = new DataView(fields.buffer, fields.byteOffset, fields.byteLength);
      const offset = Number(v.getBigUint64(0, true));
      const bytes = v.getUint32(h.background_bytes.offset - h.background_offset.offset, true);
      const crc = v.getUint32(h.background_crc32.offset - h.background_offset.offset, true);
      const area = await transport.read(offset, bytes);
      if ((await transport.readWord(h.background_version.offset)) === version && dataCrc32(area) === crc) return decodeDetections(area);
    }
    if (Date.now() > deadline) throw new Error(`${transport.name}: the background area changed during every read for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
