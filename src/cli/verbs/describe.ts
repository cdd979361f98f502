// grass describe: the target description the agent published (kernel release, KASLR, paging,
// memory map, sizes of the symbol table and BTF).
import type { CliCommand } from '../command';
import { hex, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass describe --target ADDR [--key-file F] [--json]

Prints what the agent found about the target kernel. In --json, addresses are hex strings.

${targetFlagsUsage}
`;

export const describeCommand: CliCommand = targetVerb({
  name: 'describe',
  summary: 'the target kernel as the agent found it (release, KASLR, paging, memory map)',
  usage,
  async run({ client }) {
    const d = await client.describe();
    const memoryBytes = d.memoryMap.reduce((sum, r) => sum + r.length, 0n);
    const result = {
      release: d.release,
      kaslrOffset: hex(d.kaslrOffset),
      physBase: hex(d.physBase),
      pageOffsetBase: hex(d.pageOffsetBase),
      pageTableRoot: hex(d.pageTableRoot),
      pagingLevels: d.pagingLevels,
      cpuCount: d.cpuCount,
      memoryMap: d.memoryMap.map((r) => ({ physStart: hex(r.physStart), length: hex(r.length) })),
      memoryBytes: Number(memoryBytes),
      symbolCount: d.symbols.length,
      btfBytes: d.btf.length,
      vmcoreinfoBytes: d.vmcoreinfo.length,
      backend: client.backend,
      writesAllowed: client.writesAllowed,
    };
    return {
      json: result,
      text: () => [
        `release          ${result.release}`,
        `KASLR offset     ${result.kaslrOffset}${d.kaslrOffset === 0n ? ' (none)' : ''}`,
        `phys_base        ${result.physBase}`,
        `page_offset_base ${result.pageOffsetBase}`,
        `page table root  ${result.pageTableRoot} (physical)`,
        `paging levels    ${result.pagingLevels}`,
        `CPUs             ${result.cpuCount}`,
        `memory           ${(Number(memoryBytes) / 2 ** 20).toFixed(0)} MiB in ${d.memoryMap.length} ranges:`,
        ...d.memoryMap.map((r) => `  ${hex(r.physStart).padStart(14)} - ${hex(r.physStart + r.length - 1n).padStart(14)}`),
        `symbols          ${result.symbolCount}`,
        `BTF              ${result.btfBytes} bytes`,
        `VMCOREINFO       ${result.vmcoreinfoBytes} bytes`,
        `agent            ${result.backend} backend, writes ${result.writesAllowed ? 'allowed' : 'refused'}`,
      ],
    };
  },
});
