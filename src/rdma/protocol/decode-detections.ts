// The GRASS_OP_DETECT reply: grass_detection[GRASS_DETECTORS], as the records say it. What a
// record means per detector (names, figures, culprit roles) is src/detect/detections.ts's part.
import * as L from './layout';
import { StructView } from './struct-view';

export interface CulpritRecord {
  pid: number;
  /** CPU used over the condition's span / its length (1000 = one CPU). */
  cpuPermille: number;
  rssBytes: bigint;
  comm: string;
  /** The CPU it is stuck on (hang), else -1. */
  cpu: number;
}

export interface DetectionRecord {
  /** GRASS_DETECT_*; 0 for a record not evaluated yet. */
  kind: number;
  active: boolean;
  /** Monitor clock; 0: never detected / the condition does not hold. */
  detectedNs: bigint;
  sinceNs: bigint;
  evaluatedNs: bigint;
  /** grass_status of the last evaluation's reads, and the address that failed when not OK. */
  status: number;
  detail: bigint;
  background: boolean;
  /** Figures at detection, per detector (protocol.h). */
  values: bigint[];
  /** At most GRASS_DETECT_CULPRITS, busiest / largest first. */
  culprits: CulpritRecord[];
}

function decodeRecord(d: StructView): DetectionRecord {
  const culprits = d.elements('culprits', L.detectCulprit, Math.min(d.u32('culprit_count'), L.DETECT_CULPRITS));
  return {
    kind: d.u32('kind'),
    active: d.u32('active') === 1,
    detectedNs: d.u64('detected_ns'),
    sinceNs: d.u64('since_ns'),
    evaluatedNs: d.u64('evaluated_ns'),
    status: d.u32('status'),
    detail: d.u64('detail'),
    background: d.u32('background') === 1,
    values: Array.from({ length: L.detection.fields.values.size / 8 }, (_, i) => d.u64('values', i)),
    culprits: culprits.map((c) => ({ pid: c.i32('pid'), cpuPermille: c.u32('cpu_permille'), rssBytes: c.u64('rss_bytes'), comm: c.text('comm'), cpu: c.i32('cpu') })),
  };
}

/** The GRASS_DETECTORS records of a DETECT reply (or of the background area's detections). */
export function decodeDetectionRecords(bytes: Uint8Array): DetectionRecord[] {
  const size = L.detection.size;
  if (bytes.length !== size * L.DETECTORS) throw new Error(`detection reply of ${bytes.length} bytes, expected ${L.DETECTORS} records of ${size}`);
  return StructView.array(bytes, L.detection, L.DETECTORS).map(decodeRecord);
}
