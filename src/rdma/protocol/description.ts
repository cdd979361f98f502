// The DESCRIBE result (grass_description_header and the sections it points at) as a
// TargetDescription for the kernel model.
import type { KernelSymbol, MemoryMapRange, TargetDescription } from '../../types/target';
import * as L from './layout';
import { StructView } from './struct-view';

/** What the agent publishes: the kernel model's TargetDescription plus agent-side facts. */
export interface AgentDescription extends TargetDescription {
  cpuCount: number;
}

export class DescriptionError extends Error {
  constructor(message: string) {
    super(`target description: ${message}`);
    this.name = 'DescriptionError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export function parseDescription(blob: Uint8Array): AgentDescription {
  if (blob.length < L.descriptionHeader.size) {
    throw new DescriptionError(`${blob.length} bytes, shorter than its ${L.descriptionHeader.size}-byte header`);
  }
  const h = StructView.at(blob, L.descriptionHeader);

  const version = h.u32('version');
  if (version !== L.GRASS_PROTOCOL_VERSION) throw new DescriptionError(`version ${version} is not the supported version ${L.GRASS_PROTOCOL_VERSION}`);
  const levels = h.u32('paging_levels');
  if (levels !== 4 && levels !== 5) throw new DescriptionError(`paging_levels is ${levels}, expected 4 or 5`);

  const section = (name: string, offset: bigint, bytes: bigint): Uint8Array => {
    if (offset + bytes > BigInt(blob.length)) {
      throw new DescriptionError(`${name} section (offset ${offset}, ${bytes} bytes) runs past the ${blob.length}-byte blob`);
    }
    return blob.subarray(Number(offset), Number(offset + bytes));
  };

  const rangeCount = h.u32('memory_range_count');
  const mapBytes = section('memory map', h.u64('memory_map_offset'), BigInt(rangeCount * L.memoryRange.size));
  const memoryMap: MemoryMapRange[] = StructView.array(mapBytes, L.memoryRange, rangeCount).map((r) => ({ physStart: r.u64('phys_start'), length: r.u64('length') }));

  return {
    release: utf8.decode(section('release', h.u64('release_offset'), h.u64('release_bytes'))),
    kaslrOffset: h.u64('kaslr_offset'),
    physBase: h.u64('phys_base'),
    pageOffsetBase: h.u64('page_offset_base'),
    pageTableRoot: h.u64('page_table_root'),
    pagingLevels: levels,
    cpuCount: h.u32('cpu_count'),
    memoryMap,
    symbols: parseKallsyms(utf8.decode(section('symbols', h.u64('symbols_offset'), h.u64('symbols_bytes')))),
    // A copy, so the description does not pin the whole reply buffer through a view.
    btf: section('BTF', h.u64('btf_offset'), h.u64('btf_bytes')).slice(),
    vmcoreinfo: utf8.decode(section('vmcoreinfo', h.u64('vmcoreinfo_offset'), h.u64('vmcoreinfo_bytes'))),
  };
}

/** `/proc/kallsyms` text: "ADDR TYPE NAME[\t[MODULE]]" per line. Malformed lines are an error. */
export function parseKallsyms(text: string): KernelSymbol[] {
  const symbols: KernelSymbol[] = [];
  let lineNumber = 0;
  for (const line of text.split('\n')) {
    lineNumber++;
    if (line === '') continue;
    const match = /^([0-9a-fA-F]{1,16}) (\S) (\S+)/.exec(line);
    if (!match) throw new DescriptionError(`symbols line ${lineNumber} is not "ADDR TYPE NAME": ${JSON.stringify(line.slice(0, 80))}`);
    symbols.push({ address: BigInt('0x' + match[1]), type: match[2], name: match[3] });
  }
  return symbols;
}
