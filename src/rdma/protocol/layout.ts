// The GRASS buffer layout of gpu/include/grass/protocol.h, mirrored field by field.
// Offsets are computed with C's natural-alignment rules from the same declaration order as the
// header; test/unit/protocol-layout.test.ts compiles offsetof/sizeof from the real header and
// compares every field, so a change on either side fails the test.

export const GRASS_MAGIC = 0x5346425353415247n; // "GRASSBFS" little-endian
export const GRASS_PROTOCOL_VERSION = 1;
export const GRASS_MAC_BYTES = 32;
export const GRASS_REQUEST_ARGS = 6;
export const GRASS_HEADER_BYTES = 4096;
export const GRASS_SLOT_DATA_OFFSET = 256;

export enum Opcode {
  Heartbeat = 1,
  Describe = 2,
  Read = 3,
  Write = 4,
  ProcessCount = 5,
  ProcessList = 6,
  FetchResult = 7,
  ReadBatch = 8,
  Metrics = 9,
  Detect = 10,
  BulkRead = 11,
}

export enum Space {
  Physical = 0,
  Kernel = 1,
  User = 2,
}

export enum Status {
  Ok = 0,
  BadMac = 1,
  Replay = 2,
  Malformed = 3,
  Unmapped = 4,
  OutOfRange = 5,
  WritesDisabled = 6,
  NoSuchResult = 7,
  Target = 8,
  Unsupported = 9,
}

export const PS_THREADS = 1;
export const PS_IDLE = 2;

export const DETECTORS = 3;
export const DETECT_CPU_HIGH_LOAD = 1;
export const DETECT_MEMORY_LEAK = 2;
export const DETECT_HANG = 3;
export const DETECT_CULPRITS = 8;
export const DETECT_SET_MODES = 1;
export const BACKGROUND_OFFSET = 1024;
export const BACKGROUND_LAYOUT = 2;
export const HISTORY_POINTS = 32;
export const METRICS_PART_CORE = 1;
export const METRICS_PART_PROGRESS = 2;
export const METRICS_PART_PREEMPT = 4;
export const METRICS_PART_TIMER = 8;
export const METRICS_PART_LOCKQ = 16;
export const METRICS_PART_DISKS = 32;
export const METRICS_MAX_DISKS = 16;
/** Hang classes (GRASS_HANG_*): the SHFH classes F1..F6. */
export const HANG_F1 = 1;
export const HANG_F2 = 2;
export const HANG_F3 = 3;
export const HANG_F4 = 4;
export const HANG_F5 = 5;
export const HANG_F6 = 6;

export const BULK_PAGE_BYTES = 4096;

export const AGENT_WRITES_ALLOWED = 1;
export const AGENT_BACKEND_CUDA = 2;

/** C scalar types used by the header, with their size (= alignment on x86-64). */
type Scalar = 'u8' | 'char' | 'u16' | 'u32' | 'i32' | 'u64';
const scalarBytes: Record<Scalar, number> = { u8: 1, char: 1, u16: 2, u32: 4, i32: 4, u64: 8 };

type FieldSpec = readonly [name: string, type: Scalar | StructLayout, count?: number];

export interface FieldLayout {
  offset: number;
  size: number;
}

export interface StructLayout {
  name: string;
  size: number;
  align: number;
  fields: Record<string, FieldLayout>;
}

function defineStruct(name: string, specs: readonly FieldSpec[]): StructLayout {
  const fields: Record<string, FieldLayout> = {};
  let offset = 0;
  let align = 1;
  for (const [field, type, count = 1] of specs) {
    const elementSize = typeof type === 'string' ? scalarBytes[type] : type.size;
    const elementAlign = typeof type === 'string' ? scalarBytes[type] : type.align;
    offset = alignUp(offset, elementAlign);
    fields[field] = { offset, size: elementSize * count };
    offset += elementSize * count;
    align = Math.max(align, elementAlign);
  }
  return { name, size: alignUp(offset, align), align, fields };
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export const bufferHeader = defineStruct('grass_buffer_header', [
  ['magic', 'u64'],
  ['version', 'u32'],
  ['header_bytes', 'u32'],
  ['buffer_bytes', 'u64'],
  ['slot_count', 'u32'],
  ['slot_bytes', 'u32'],
  ['slot_data_bytes', 'u32'],
  ['flags', 'u32'],
  ['instance', 'u64'],
  ['liveness_version', 'u64'],
  ['liveness_counter', 'u64'],
  ['monitor_clock_ns', 'u64'],
  ['requests_served', 'u64'],
  ['requests_refused', 'u64'],
  ['background_version', 'u64'],
  ['background_offset', 'u64'],
  ['background_capacity', 'u32'],
  ['background_bytes', 'u32'],
  ['background_crc32', 'u32'],
  ['reserved0', 'u32'],
]);

export const request = defineStruct('grass_request', [
  ['seq', 'u64'],
  ['opcode', 'u32'],
  ['data_bytes', 'u32'],
  ['args', 'u64', GRASS_REQUEST_ARGS],
  ['mac', 'u8', GRASS_MAC_BYTES],
]);

export const reply = defineStruct('grass_reply', [
  ['seq', 'u64'],
  ['status', 'u32'],
  ['data_bytes', 'u32'],
  ['total_bytes', 'u64'],
  ['result_id', 'u64'],
  ['offset', 'u64'],
  ['detail', 'u64'],
  ['data_crc32', 'u32'],
  ['request_tag', 'u32'],
]);

// The header pads each half of a slot header to a 64-byte boundary with this same expression
// (a full 64 bytes when the half is already aligned).
const pad64 = (bytes: number): number => 64 - (bytes % 64);

export const slotHeader = defineStruct('grass_slot_header', [
  ['request', request],
  ['request_mark', 'u64'],
  ['pad0', 'u8', pad64(request.size + 8)],
  ['reply', reply],
  ['reply_mark', 'u64'],
  ['pad1', 'u8', pad64(reply.size + 8)],
]);

export const readBatchEntry = defineStruct('grass_read_batch_entry', [
  ['space', 'u32'],
  ['pid', 'u32'],
  ['address', 'u64'],
  ['length', 'u32'],
  ['reserved0', 'u32'],
]);

export const taskRecord = defineStruct('grass_task_record', [
  ['task_address', 'u64'],
  ['pid', 'i32'],
  ['tgid', 'i32'],
  ['ppid', 'i32'],
  ['cpu', 'i32'],
  ['utime_ns', 'u64'],
  ['stime_ns', 'u64'],
  ['rss_bytes', 'u64'],
  ['threads', 'u32'],
  ['state', 'char'],
  ['reserved0', 'u8', 3],
  ['comm', 'char', 16],
]);

export const metricsSample = defineStruct('grass_metrics_sample', [
  ['monitor_clock_ns', 'u64'],
  ['status', 'u32'],
  ['cpu_count', 'u32'],
  ['detail', 'u64'],
  ['pswpin', 'u64'],
  ['pswpout', 'u64'],
  ['free_pages', 'u64'],
  ['total_ram_pages', 'u64'],
  ['free_swap_pages', 'u64'],
  ['total_swap_pages', 'u64'],
  ['page_size', 'u64'],
  ['jiffies', 'u64'],
  ['parts', 'u32'],
  ['disk_count', 'u32'],
]);

export const metricsCpu = defineStruct('grass_metrics_cpu', [
  ['user_ns', 'u64'],
  ['nice_ns', 'u64'],
  ['system_ns', 'u64'],
  ['irq_ns', 'u64'],
  ['softirq_ns', 'u64'],
  ['idle_ns', 'u64'],
  ['iowait_ns', 'u64'],
  ['steal_ns', 'u64'],
  ['nr_switches', 'u64'],
  ['nr_running', 'u32'],
  ['nr_iowait', 'u32'],
  ['irqs', 'u64'],
  ['timer_irqs', 'u64'],
  ['curr_task', 'u64'],
  ['curr_utime_ns', 'u64'],
  ['curr_stime_ns', 'u64'],
  ['curr_pid', 'i32'],
  ['curr_tgid', 'i32'],
  ['curr_comm', 'char', 16],
  ['curr_samples', 'u32'],
  ['preempt_count', 'i32'],
  ['lock_waiters', 'u32'],
  ['reserved0', 'u32'],
]);

export const metricsDisk = defineStruct('grass_metrics_disk', [
  ['name', 'char', 32],
  ['io_ticks', 'u64'],
  ['ios', 'u64'],
]);

export const detectCulprit = defineStruct('grass_detect_culprit', [
  ['pid', 'i32'],
  ['cpu_permille', 'u32'],
  ['rss_bytes', 'u64'],
  ['comm', 'char', 16],
  ['cpu', 'i32'],
  ['reserved0', 'u32'],
]);

export const detection = defineStruct('grass_detection', [
  ['kind', 'u32'],
  ['active', 'u32'],
  ['detected_ns', 'u64'],
  ['since_ns', 'u64'],
  ['evaluated_ns', 'u64'],
  ['status', 'u32'],
  ['culprit_count', 'u32'],
  ['detail', 'u64'],
  ['background', 'u32'],
  ['reserved0', 'u32'],
  ['values', 'u64', 8],
  ['culprits', detectCulprit, DETECT_CULPRITS],
]);

export const historyPoint = defineStruct('grass_history_point', [
  ['monitor_clock_ns', 'u64'],
  ['window_ms', 'u32'],
  ['usr_permille', 'u16'],
  ['sys_permille', 'u16'],
  ['iowait_permille', 'u16'],
  ['idle_permille', 'u16'],
  ['context_switches', 'u32'],
  ['pswpin', 'u32'],
  ['pswpout', 'u32'],
  ['free_mib', 'u32'],
  ['run', 'u16'],
  ['blk', 'u16'],
  ['util_permille', 'u16'],
  ['jiffies', 'u16'],
]);

export const background = defineStruct('grass_background', [
  ['layout', 'u32'],
  ['history_count', 'u32'],
  ['history_next', 'u32'],
  ['reserved0', 'u32'],
  ['detections', detection, DETECTORS],
  ['history', historyPoint, HISTORY_POINTS],
]);

export const descriptionHeader = defineStruct('grass_description_header', [
  ['version', 'u32'],
  ['paging_levels', 'u32'],
  ['kaslr_offset', 'u64'],
  ['phys_base', 'u64'],
  ['page_offset_base', 'u64'],
  ['page_table_root', 'u64'],
  ['cpu_count', 'u32'],
  ['memory_range_count', 'u32'],
  ['memory_map_offset', 'u64'],
  ['release_offset', 'u64'],
  ['release_bytes', 'u64'],
  ['vmcoreinfo_offset', 'u64'],
  ['vmcoreinfo_bytes', 'u64'],
  ['symbols_offset', 'u64'],
  ['symbols_bytes', 'u64'],
  ['btf_offset', 'u64'],
  ['btf_bytes', 'u64'],
]);

export const memoryRange = defineStruct('grass_memory_range', [
  ['phys_start', 'u64'],
  ['length', 'u64'],
]);

/** Every struct of the header, for the layout test. */
export const allStructs: readonly StructLayout[] = [
  bufferHeader,
  request,
  reply,
  slotHeader,
  readBatchEntry,
  taskRecord,
  metricsSample,
  metricsCpu,
  metricsDisk,
  detectCulprit,
  detection,
  historyPoint,
  background,
  descriptionHeader,
  memoryRange,
];

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
