// Helpers shared by the testbed's integration tests: facts read from the guest or from files the
// code under test does not produce (/proc/iomem, /proc/kallsyms, readelf on vmlinux).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Guest } from '../../testbed';

export interface IomemRange {
  start: bigint;
  end: bigint;
  name: string;
}

/** Top-level and nested /proc/iomem entries, as the guest prints them (as root: real addresses). */
export async function guestIomem(guest: Guest): Promise<IomemRange[]> {
  const text = await guest.exec('cat /proc/iomem');
  return [...text.matchAll(/^\s*([0-9a-f]+)-([0-9a-f]+) : (.+)$/gm)].map((m) => ({
    start: BigInt('0x' + m[1]),
    end: BigInt('0x' + m[2]),
    name: m[3].trim(),
  }));
}

/** Addresses of the named symbols from the guest's /proc/kallsyms. */
export async function guestSymbols(guest: Guest, names: string[]): Promise<Record<string, bigint>> {
  const pattern = names.map((n) => ` ${n}$`).join('|');
  const text = await guest.exec(`grep -E '${pattern}' /proc/kallsyms`);
  const out: Record<string, bigint> = {};
  for (const m of text.matchAll(/^([0-9a-f]+) \S (\S+)$/gm)) if (names.includes(m[2]) && !(m[2] in out)) out[m[2]] = BigInt('0x' + m[1]);
  for (const n of names) if (!(n in out)) throw new Error(`symbol ${n} not in the guest's /proc/kallsyms`);
  return out;
}

/**
 * Physical address of a kernel-image symbol: the image is physically contiguous from "Kernel
 * code" in /proc/iomem, which starts at _text.
 */
export async function kernelImagePhys(guest: Guest, symbol: string): Promise<bigint> {
  const iomem = await guestIomem(guest);
  const code = iomem.find((r) => r.name === 'Kernel code');
  if (!code) throw new Error('no "Kernel code" in /proc/iomem');
  const syms = await guestSymbols(guest, ['_text', symbol]);
  return code.start + (syms[symbol] - syms._text);
}

/** sh_addr of a section of an ELF file, by readelf. */
export function elfSectionAddress(file: string, section: string): bigint {
  const out = execFileSync('readelf', ['-SW', file], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes(` ${section} `));
  const m = line && /\]\s+\S+\s+\S+\s+([0-9a-f]+)/.exec(line);
  if (!m) throw new Error(`readelf: no section ${section} in ${file}`);
  return BigInt('0x' + m[1]);
}

/** Whether anything of the guest is left on this machine. */
export function guestLeftovers(guest: Guest): string[] {
  const left: string[] = [];
  if (fs.existsSync(guest.ramFile)) left.push(guest.ramFile);
  if (fs.existsSync(guest.record.runDir)) left.push(guest.record.runDir);
  try {
    if (fs.readFileSync(`/proc/${guest.qemuPid}/cmdline`, 'utf8').includes(guest.record.runDir)) left.push(`QEMU pid ${guest.qemuPid}`);
  } catch {
    // gone
  }
  return left;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
