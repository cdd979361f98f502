// save-vmcore's plan and ELF header on synthetic page classes: every kept page is fetched exactly
// once and lands at its segment's place, no excluded page is fetched, chunks fit a slot both
// ways; binutils' readelf (not our code) reads the header back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { elfLayout, START_KERNEL_MAP } from '../../src/vmcore/elf';
import { PAGE_BYTES, PageClass, RangeClasses } from '../../src/vmcore/page-filter';
import { ExcludedRun, filteredSegments, makePlan, MAX_SEGMENTS, MIN_HOLE_PAGES } from '../../src/vmcore/plan';

const SLOT_DATA_BYTES = 64 * PAGE_BYTES;

/** A pseudo-random but fixed mix of classes: long free stretches, scattered user and cache pages. */
function classes(pages: number, seed: number): Uint8Array {
  const c = new Uint8Array(pages);
  let x = seed;
  const next = (): number => (x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < pages;) {
    const r = next();
    const len = 1 + Math.floor(next() * (r < 0.2 ? 2000 : 40));
    const cls = r < 0.2 ? PageClass.Free : r < 0.3 ? PageClass.User : r < 0.35 ? PageClass.Cache : PageClass.Kept;
    c.fill(cls, i, Math.min(pages, i + len));
    i += len;
  }
  return c;
}

const ranges: RangeClasses[] = [
  { physStart: 0n, pages: 0x9f, classes: classes(0x9f, 1), unreadable: 0 },
  { physStart: 0x100000n, pages: 60000, classes: classes(60000, 2), unreadable: 0 },
  { physStart: 0x100000000n, pages: 30000, classes: classes(30000, 3), unreadable: 0 },
];

test('the plan fetches every kept page once, no excluded page, in chunks that fit a slot', () => {
  const excluded: ExcludedRun[] = [];
  const segments = filteredSegments(ranges, excluded);
  assert.ok(segments.length <= MAX_SEGMENTS);
  const plan = makePlan(segments, excluded, SLOT_DATA_BYTES);
  const fetched = new Map<bigint, number>();
  for (const c of plan.chunks) {
    assert.ok(c.wantedPages * PAGE_BYTES <= SLOT_DATA_BYTES, `chunk ${c.index} returns ${c.wantedPages} pages`);
    assert.ok(c.pages <= 8 * SLOT_DATA_BYTES && (!c.bitmap || c.bitmap.length * 8 >= c.pages));
    for (let k = 0; k < c.pages; k++) {
      if (c.bitmap && !((c.bitmap[k >> 3] >> (k & 7)) & 1)) continue;
      const phys = c.physStart + BigInt(k * PAGE_BYTES);
      fetched.set(phys, (fetched.get(phys) ?? 0) + 1);
    }
  }
  let kept = 0;
  for (const r of ranges) {
    for (let i = 0; i < r.pages; i++) {
      const phys = r.physStart + BigInt(i * PAGE_BYTES);
      if (r.classes[i] === PageClass.Kept) {
        kept++;
        assert.equal(fetched.get(phys), 1, `kept page 0x${phys.toString(16)} fetched ${fetched.get(phys) ?? 0} times`);
      } else {
        assert.equal(fetched.get(phys), undefined, `excluded page 0x${phys.toString(16)} fetched`);
      }
    }
  }
  assert.equal(plan.wantedPages, kept);
  // Every excluded page is accounted for once, with its class; holes are at least MIN_HOLE_PAGES
  // long unless closed to fit MAX_SEGMENTS.
  const excludedTotal = excluded.reduce((n, r) => n + r.pages, 0);
  assert.equal(excludedTotal, ranges.reduce((n, r) => n + r.classes.filter((c) => c !== PageClass.Kept).length, 0));
  for (const r of excluded) {
    const range = ranges.find((x) => r.physStart >= x.physStart && r.physStart < x.physStart + BigInt(x.pages * PAGE_BYTES))!;
    const first = Number((r.physStart - range.physStart) / BigInt(PAGE_BYTES));
    assert.ok(range.classes.subarray(first, first + r.pages).every((c) => c === r.reason));
  }
  assert.ok(excluded.some((r) => r.inFile === 'hole' && r.pages >= MIN_HOLE_PAGES) && excluded.some((r) => r.inFile === 'zeros'));
});

test('readelf reads the header back: the VMCOREINFO note, a PT_LOAD per segment at its direct-map address, the kernel image mapping', () => {
  const excluded: ExcludedRun[] = [];
  const segments = filteredSegments(ranges, excluded);
  const physBase = 0x1e00000n;
  const pageOffsetBase = 0xffff9a0000000000n;
  // The kernel image: inside a kept segment of the second range, mapped where phys_base says.
  const seg = segments.find((s) => s.physStart >= 0x100000n && s.physStart < 0x100000000n && s.pages > 8)!;
  const imagePhys = seg.physStart + BigInt(2 * PAGE_BYTES);
  const text = imagePhys + START_KERNEL_MAP - physBase;
  const vmcoreinfo = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\n';
  const layout = elfLayout(segments, {
    vmcoreinfo,
    pageOffsetBase,
    physBase,
    symbols: [{ name: '_text', address: text, type: 'T' }, { name: '_end', address: text + 0x3000n, type: 'B' }],
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-vmcore-elf-'));
  try {
    const file = path.join(dir, 'core');
    writeFileSync(file, layout.header);
    truncateSync(file, layout.fileBytes);
    const out = execFileSync('readelf', ['-lnW', file], { encoding: 'utf8' });
    assert.match(out, /Elf file type is CORE/);
    assert.match(out, /VMCOREINFO\s+0x0+\w+\s+Unknown note type: \(0x00000000\)/);
    const loads = [...out.matchAll(/^\s+LOAD\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)/gm)].map((m) => m.slice(1).map((h) => BigInt(`0x${h}`)));
    assert.equal(loads.length, segments.length + layout.textAliases);
    segments.forEach((s, i) => {
      const [offset, vaddr, paddr, filesz] = loads[i];
      assert.equal(paddr, s.physStart);
      assert.equal(vaddr, pageOffsetBase + s.physStart);
      assert.equal(filesz, BigInt(s.pages * PAGE_BYTES));
      assert.equal(offset, BigInt(layout.segmentOffsets[i]));
    });
    const alias = loads[segments.length];
    assert.equal(alias[1], text);
    assert.equal(alias[2], imagePhys);
    const segIndex = segments.indexOf(seg);
    assert.equal(alias[0], BigInt(layout.segmentOffsets[segIndex]) + (imagePhys - seg.physStart), 'the image mapping shares its segment\'s bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
