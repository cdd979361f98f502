// What grass save-vmcore writes where: the file's segments (physical runs of pages), which pages
// of them come over the wire, and the chunks of BULK_READ requests that fetch them. The plan is a
// pure function of the target's description and the page classes, so an interrupted transfer
// can check that it resumes the same plan.
import { createHash } from 'node:crypto';
import { PAGE_BYTES, PageClass, RangeClasses } from './page-filter';

/**
 * Excluded runs shorter than this stay inside their segment as zero-filled pages (makedumpfile's
 * ELF output does the same below 256 pages), so a fragmented filter does not make thousands of
 * segments.
 */
export const MIN_HOLE_PAGES = 256;
/** GRASS's own vmcore reader holds at most 64 physical ranges (GRASS_MAX_PHYS_RANGES). */
export const MAX_SEGMENTS = 60;

export interface Segment {
  physStart: bigint;
  pages: number;
  /** Set when some pages of the segment are excluded (written as zeros, never fetched). */
  wanted?: Uint8Array;
}

export interface Chunk {
  index: number;
  physStart: bigint;
  pages: number;
  /** Bit k selects page k; absent: every page. */
  bitmap?: Uint8Array;
  wantedPages: number;
  segment: number;
  /** Page offset of physStart within its segment. */
  segmentPage: number;
}

export interface ExcludedRun {
  physStart: bigint;
  pages: number;
  reason: PageClass;
  /** 'hole': left out of the file; 'zeros': inside a segment, written as zero pages. */
  inFile: 'hole' | 'zeros';
}

export interface Plan {
  segments: Segment[];
  chunks: Chunk[];
  excluded: ExcludedRun[];
  totalPages: number;
  wantedPages: number;
}

function isWanted(s: Segment, k: number): boolean {
  return !s.wanted || s.wanted[k] === 1;
}

/** Every page of every memory-map range. */
export function fullSegments(memoryMap: { physStart: bigint; length: bigint }[]): Segment[] {
  return memoryMap.map((r) => ({ physStart: r.physStart, pages: Number(r.length / BigInt(PAGE_BYTES)) }));
}

/** Kept pages grouped into segments; excluded runs split segments when long enough. */
export function filteredSegments(ranges: RangeClasses[], excluded: ExcludedRun[]): Segment[] {
  interface Run { start: number; end: number } // page indices within a range, [start, end)
  const segments: Segment[] = [];
  const perRange: { range: RangeClasses; runs: Run[] }[] = [];
  for (const range of ranges) {
    const runs: Run[] = [];
    for (let i = 0; i < range.pages;) {
      if (range.classes[i] !== PageClass.Kept) { i++; continue; }
      let j = i;
      while (j < range.pages && range.classes[j] === PageClass.Kept) j++;
      const last = runs[runs.length - 1];
      if (last && i - last.end < MIN_HOLE_PAGES) last.end = j;
      else runs.push({ start: i, end: j });
      i = j;
    }
    perRange.push({ range, runs });
  }
  // Too many segments: close the smallest holes until they fit.
  for (;;) {
    const count = perRange.reduce((n, r) => n + r.runs.length, 0);
    if (count <= MAX_SEGMENTS) break;
    let best: { r: (typeof perRange)[number]; k: number; gap: number } | undefined;
    for (const r of perRange) {
      for (let k = 1; k < r.runs.length; k++) {
        const gap = r.runs[k].start - r.runs[k - 1].end;
        if (!best || gap < best.gap) best = { r, k, gap };
      }
    }
    if (!best) throw new Error(`vmcore: ${count} memory ranges, more than the ${MAX_SEGMENTS} segments a GRASS vmcore may hold`);
    best.r.runs[best.k - 1].end = best.r.runs[best.k].end;
    best.r.runs.splice(best.k, 1);
  }
  for (const { range, runs } of perRange) {
    const base = range.physStart;
    const page = (i: number): bigint => base + BigInt(i) * BigInt(PAGE_BYTES);
    // Excluded runs of the range, by class, split where a segment starts or ends: inside one
    // they are written as zeros, outside they are holes.
    for (let i = 0; i < range.pages;) {
      const c = range.classes[i];
      let j = i;
      while (j < range.pages && range.classes[j] === c) j++;
      for (let at = i; c !== PageClass.Kept && at < j;) {
        const inside = runs.find((s) => at >= s.start && at < s.end);
        const next = inside ? Math.min(j, inside.end) : Math.min(j, runs.find((s) => s.start > at)?.start ?? j);
        excluded.push({ physStart: page(at), pages: next - at, reason: c, inFile: inside ? 'zeros' : 'hole' });
        at = next;
      }
      i = j;
    }
    for (const r of runs) {
      const wanted = range.classes.subarray(r.start, r.end).map((c) => (c === PageClass.Kept ? 1 : 0));
      segments.push({ physStart: page(r.start), pages: r.end - r.start, ...(wanted.every((w) => w === 1) ? {} : { wanted }) });
    }
  }
  return segments;
}

/** Splits segments into BULK_READ chunks that fit one slot's data area both ways. */
export function makePlan(segments: Segment[], excluded: ExcludedRun[], slotDataBytes: number): Plan {
  const maxWanted = Math.floor(slotDataBytes / PAGE_BYTES);
  const maxSpan = 8 * slotDataBytes;
  if (maxWanted < 1) throw new Error(`vmcore: the agent's slot data area (${slotDataBytes} bytes) is smaller than a page`);
  const chunks: Chunk[] = [];
  let totalPages = 0;
  let wantedPages = 0;
  segments.forEach((s, segment) => {
    totalPages += s.pages;
    for (let p = 0; p < s.pages;) {
      while (p < s.pages && !isWanted(s, p)) p++;
      if (p >= s.pages) break;
      let q = p;
      let wanted = 0;
      while (q < s.pages && q - p < maxSpan && (wanted < maxWanted || !isWanted(s, q))) {
        if (isWanted(s, q)) wanted++;
        q++;
      }
      while (!isWanted(s, q - 1)) q--; // end on a wanted page
      let bitmap: Uint8Array | undefined;
      if (wanted !== q - p) {
        bitmap = new Uint8Array(Math.ceil((q - p) / 8));
        for (let k = p; k < q; k++) if (isWanted(s, k)) bitmap[(k - p) >> 3] |= 1 << ((k - p) & 7);
      }
      chunks.push({ index: chunks.length, physStart: s.physStart + BigInt(p) * BigInt(PAGE_BYTES), pages: q - p, bitmap, wantedPages: wanted, segment, segmentPage: p });
      wantedPages += wanted;
      p = q;
    }
  });
  return { segments, chunks, excluded, totalPages, wantedPages };
}

/** Names the plan (with the file's header bytes): a journal of another plan is refused. */
export function planDigest(plan: Plan, header: Uint8Array): string {
  const h = createHash('sha256');
  h.update(header);
  for (const c of plan.chunks) {
    h.update(`${c.physStart}:${c.pages}:${c.segment}:${c.segmentPage}:`);
    if (c.bitmap) h.update(c.bitmap);
    h.update(';');
  }
  return h.digest('hex');
}
