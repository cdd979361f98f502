// Test-support API of the testbed: a Debian kernel in QEMU with faults on demand and ground truth.
// See docs/testbed.md.
export {
  attachGuest,
  bootGuest,
  FAULT_KINDS,
  Guest,
  listGuests,
  parseMemoryMap,
  reapStaleGuests,
  RUN_ROOT,
} from './guest';
export type { CpuRegisters, FaultKind, FaultResult, ModuleFunction, GuestOptions, GuestRecord, MemoryMap, MemoryRange, PreemptModel, QemuDumpFormat } from './guest';
export { DEFAULT_KERNEL_PACKAGE, prepareKernel } from './kernels';
export type { KernelDir } from './kernels';
export { QmpError } from './qmp';
export { SerialTimeoutError } from './serial';
export type { RunResult } from './serial';
export { parseKmsg, parseProcStat, parseTruth, TruthParseError } from './truth';
export type { CpuTimes, GroundTruth, KmsgRecord, LoadAvg, ProcStat, TruthTask } from './truth';
export { startAgent } from './agent';
export type { AgentHandle } from './agent';
