// The GRASS buffer layout of gpu/include/grass/protocol.h (and grass/detectors.h) for the remote:
// every number comes from wire.generated.ts, which scripts/gen-wire-layout.mjs generates from the
// headers with the C compiler's own offsetof/sizeof (gpu/Makefile runs it; a unit test fails when
// the committed file is stale). This file only names the pieces the decoders use.
import * as W from './wire.generated';

export { Opcode, Space, Status } from './wire.generated';

export const GRASS_MAGIC = W.GRASS_MAGIC;
export const GRASS_PROTOCOL_VERSION = W.GRASS_PROTOCOL_VERSION;
export const GRASS_MAC_BYTES = W.GRASS_MAC_BYTES;
export const GRASS_REQUEST_ARGS = W.GRASS_REQUEST_ARGS;
export const GRASS_HEADER_BYTES = W.GRASS_HEADER_BYTES;
export const GRASS_SLOT_DATA_OFFSET = W.GRASS_SLOT_DATA_OFFSET;

export const PS_THREADS = W.GRASS_PS_THREADS;
export const PS_IDLE = W.GRASS_PS_IDLE;

export const DETECTORS = W.GRASS_DETECTORS;
export const DETECT_CPU_HIGH_LOAD = W.GRASS_DETECT_CPU_HIGH_LOAD;
export const DETECT_MEMORY_LEAK = W.GRASS_DETECT_MEMORY_LEAK;
export const DETECT_HANG = W.GRASS_DETECT_HANG;
export const DETECT_CULPRITS = W.GRASS_DETECT_CULPRITS;
export const DETECT_SET_MODES = W.GRASS_DETECT_SET_MODES;
/** Every detector of grass/detectors.h (kind, mode bit, remote name, C symbol), by kind. */
export const detectorTable = W.detectors;
export const BACKGROUND_OFFSET = W.GRASS_BACKGROUND_OFFSET;
export const BACKGROUND_LAYOUT = W.GRASS_BACKGROUND_LAYOUT;
export const HISTORY_POINTS = W.GRASS_HISTORY_POINTS;
export const METRICS_PART_CORE = W.GRASS_METRICS_PART_CORE;
export const METRICS_PART_PROGRESS = W.GRASS_METRICS_PART_PROGRESS;
export const METRICS_PART_PREEMPT = W.GRASS_METRICS_PART_PREEMPT;
export const METRICS_PART_TIMER = W.GRASS_METRICS_PART_TIMER;
export const METRICS_PART_LOCKQ = W.GRASS_METRICS_PART_LOCKQ;
export const METRICS_PART_DISKS = W.GRASS_METRICS_PART_DISKS;
export const METRICS_MAX_DISKS = W.GRASS_METRICS_MAX_DISKS;
/** Hang classes (GRASS_HANG_*): the SHFH classes F1..F6. */
export const HANG_F1 = W.GRASS_HANG_F1;
export const HANG_F2 = W.GRASS_HANG_F2;
export const HANG_F3 = W.GRASS_HANG_F3;
export const HANG_F4 = W.GRASS_HANG_F4;
export const HANG_F5 = W.GRASS_HANG_F5;
export const HANG_F6 = W.GRASS_HANG_F6;

export const BULK_PAGE_BYTES = W.GRASS_BULK_PAGE_BYTES;

export const AGENT_WRITES_ALLOWED = W.GRASS_AGENT_WRITES_ALLOWED;
export const AGENT_BACKEND_CUDA = W.GRASS_AGENT_BACKEND_CUDA;

export interface FieldLayout {
  offset: number;
  size: number;
}

export interface StructLayout {
  name: string;
  size: number;
  align: number;
  fields: Readonly<Record<string, FieldLayout>>;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export const bufferHeader: StructLayout = W.structs.grass_buffer_header;
export const request: StructLayout = W.structs.grass_request;
export const reply: StructLayout = W.structs.grass_reply;
export const slotHeader: StructLayout = W.structs.grass_slot_header;
export const readBatchEntry: StructLayout = W.structs.grass_read_batch_entry;
export const taskRecord: StructLayout = W.structs.grass_task_record;
export const metricsSample: StructLayout = W.structs.grass_metrics_sample;
export const metricsCpu: StructLayout = W.structs.grass_metrics_cpu;
export const metricsDisk: StructLayout = W.structs.grass_metrics_disk;
export const detectCulprit: StructLayout = W.structs.grass_detect_culprit;
export const detection: StructLayout = W.structs.grass_detection;
export const historyPoint: StructLayout = W.structs.grass_history_point;
export const background: StructLayout = W.structs.grass_background;
export const descriptionHeader: StructLayout = W.structs.grass_description_header;
export const memoryRange: StructLayout = W.structs.grass_memory_range;

/** Every struct of the headers, for the layout drift test. */
export const allStructs: readonly StructLayout[] = Object.values(W.structs);

/** Byte offsets inside one slot, from the slot's start. */
export const slotOffsets = {
  request: slotHeader.fields.request.offset,
  requestMark: slotHeader.fields.request_mark.offset,
  reply: slotHeader.fields.reply.offset,
  replyMark: slotHeader.fields.reply_mark.offset,
  data: GRASS_SLOT_DATA_OFFSET,
} as const;

/** Offsets inside the buffer header of the seqlocked liveness block (version, then the rest). */
export const livenessBlock = {
  start: bufferHeader.fields.liveness_version.offset,
  end: bufferHeader.fields.requests_refused.offset + 8,
} as const;
