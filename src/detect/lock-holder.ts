// F5 from the kernel's log. A spinlock records no owner, and on a hypervisor (the testbed's QEMU
// among them) x86 spins on a contended lock without queueing (virt_spin_lock), so the per-CPU
// queued-spinlock nodes show no waiters either: from memory, CPUs spinning on a lock whose holder
// slept read as F3 (stuck, preemption off). The kernel prints "BUG: scheduling while atomic:
// COMM/PID/0x..." when a task sleeps with preemption disabled (holding a spinlock); that record,
// read from the target's log ring, names the holder and turns F3 into F5.
import type { GrassClient } from '../rdma/client';
import { KernelLogReader } from '../kernel/log/ringbuffer';
import type { Culprit, Detection } from './detections';

const SLEPT_ATOMIC = /BUG: scheduling while atomic: (.{1,16})\/(\d+)\/0x[0-9a-f]+/;

/** The latest "scheduling while atomic" report of the log, as a culprit; null when there is none. */
export async function sleptWhileAtomic(client: GrassClient): Promise<Culprit | null> {
  const reader = new KernelLogReader(client, await client.describe());
  const log = await reader.read({});
  for (let i = log.records.length - 1; i >= 0; i--) {
    const m = SLEPT_ATOMIC.exec(log.records[i].text);
    if (m) return { pid: Number(m[2]), comm: m[1], role: 'lock-holder', cpu: null, cpuPercent: 0, rssBytes: 0 };
  }
  return null;
}

/**
 * Refines a hang on CPUs with preemption off (F3, or F5 seen through lock waiters) with the log:
 * when a task that is not one of the stuck CPUs' tasks slept in atomic context, the CPUs spin on
 * the lock it holds: class F5, that task first among the culprits (the spinning tasks follow).
 */
export async function withLockHolder(client: GrassClient, detections: Detection[]): Promise<Detection[]> {
  const hang = detections.find((d) => d.detector === 'hang' && (d.hangClass === 'F3' || d.hangClass === 'F5'));
  if (!hang) return detections;
  const holder = await sleptWhileAtomic(client).catch(() => null);
  if (holder && !hang.culprits.some((c) => c.pid === holder.pid)) {
    hang.hangClass = 'F5';
    hang.figures = { ...hang.figures, lockHolderFromLog: 1 };
    hang.culprits = [holder, ...hang.culprits];
  }
  return detections;
}
