// The fuzzer's memory image: a paused testbed guest's RAM copied once into a tmpfs file that the
// mutants are written into, each mutation undone before the next (an undo log of the bytes it
// overwrote), so one copy serves a whole run and the pristine bytes are never lost.
import * as fs from 'node:fs';
import path from 'node:path';
import { bootGuest, type GuestOptions, type MemoryMap } from '../../testbed';

export interface PhysRange {
  physStart: bigint;
  length: bigint;
  fileOffset: bigint;
}

/** One byte run written into the image, in guest-physical terms. */
export interface PhysWrite {
  phys: bigint;
  bytes: Uint8Array;
}

export class FuzzImage {
  private readonly fd: number;
  private undo: { offset: number; bytes: Buffer }[] = [];
  /** What `applyForRun` overwrote: restored only by `restoreAll`. */
  private runUndo: { offset: number; bytes: Buffer }[] = [];

  private constructor(
    readonly ramFile: string,
    readonly mapFile: string,
    readonly ranges: PhysRange[],
    readonly bootDescription: string,
  ) {
    this.fd = fs.openSync(ramFile, 'r+');
  }

  /**
   * Boots a testbed guest, lets it start some processes and threads, pauses it, copies its RAM
   * to `dir` (a tmpfs folder) and shuts it down. The copy and a memory map naming it are the image.
   */
  static async capture(dir: string, options: GuestOptions = {}): Promise<FuzzImage> {
    fs.mkdirSync(dir, { recursive: true });
    const guest = await bootGuest({ memMiB: 256, cpus: 2, ...options });
    try {
      await guest.spawn(4);
      await guest.spawn(3, { threads: true });
      await guest.pause();
      const ramFile = path.join(dir, 'guest.ram');
      fs.copyFileSync(guest.ramFile, ramFile);
      const map: MemoryMap = { ...guest.memoryMap(), ramFile };
      const mapFile = path.join(dir, 'memory-map.json');
      fs.writeFileSync(mapFile, JSON.stringify(map));
      const ranges = map.ranges.map((r) => ({ physStart: BigInt(r.physStart), length: BigInt(r.length), fileOffset: BigInt(r.fileOffset) }));
      return new FuzzImage(ramFile, mapFile, ranges, `${guest.kernelDir.release}, ${guest.record.options.memMiB} MiB, ${guest.record.options.cpus} CPUs${guest.record.options.kaslr ? ", KASLR" : ""}`);
    } finally {
      await guest.down();
    }
  }

  /**
   * A kept image (`keep` of an earlier run: guest.ram and memory-map.json in dir), which makes a
   * seed reproduce exactly the same mutants; else a fresh capture.
   */
  static async captureOrReuse(dir: string, keptDir: string | undefined): Promise<FuzzImage> {
    if (keptDir && fs.existsSync(path.join(keptDir, 'guest.ram')) && fs.existsSync(path.join(keptDir, 'memory-map.json'))) {
      const map = JSON.parse(fs.readFileSync(path.join(keptDir, 'memory-map.json'), 'utf8')) as MemoryMap & { description?: string };
      fs.mkdirSync(dir, { recursive: true });
      const ramFile = path.join(dir, 'guest.ram');
      fs.copyFileSync(path.join(keptDir, 'guest.ram'), ramFile);
      const mapFile = path.join(dir, 'memory-map.json');
      fs.writeFileSync(mapFile, JSON.stringify({ ...map, ramFile }));
      const ranges = map.ranges.map((r) => ({ physStart: BigInt(r.physStart), length: BigInt(r.length), fileOffset: BigInt(r.fileOffset) }));
      return new FuzzImage(ramFile, mapFile, ranges, `${map.description ?? 'kept image'} (kept in ${keptDir})`);
    }
    const image = await FuzzImage.capture(dir);
    if (keptDir) {
      fs.mkdirSync(keptDir, { recursive: true });
      fs.copyFileSync(image.ramFile, path.join(keptDir, 'guest.ram'));
      const map = JSON.parse(fs.readFileSync(image.mapFile, 'utf8')) as MemoryMap;
      fs.writeFileSync(path.join(keptDir, 'memory-map.json'), JSON.stringify({ ...map, ramFile: path.join(keptDir, 'guest.ram'), description: image.bootDescription }));
    }
    return image;
  }

  /** File offset of a guest-physical address, or undefined outside RAM. */
  offsetOf(phys: bigint, length = 1): number | undefined {
    for (const r of this.ranges) {
      if (phys >= r.physStart && phys + BigInt(length) <= r.physStart + r.length) return Number(phys - r.physStart + r.fileOffset);
    }
    return undefined;
  }

  get physEnd(): bigint {
    return this.ranges.reduce((end, r) => (r.physStart + r.length > end ? r.physStart + r.length : end), 0n);
  }

  get memoryBytes(): bigint {
    return this.ranges.reduce((sum, r) => sum + r.length, 0n);
  }

  readPhys(phys: bigint, length: number): Buffer {
    const offset = this.offsetOf(phys, length);
    if (offset === undefined) throw new Error(`fuzz image: physical 0x${phys.toString(16)}+${length} is not in RAM`);
    const out = Buffer.alloc(length);
    fs.readSync(this.fd, out, 0, length, offset);
    return out;
  }

  /** Applies one mutant's writes, remembering what they overwrote (outside-RAM writes are dropped). */
  apply(writes: PhysWrite[], log = this.undo): void {
    for (const w of writes) {
      const offset = this.offsetOf(w.phys, w.bytes.length);
      if (offset === undefined) continue;
      const old = Buffer.alloc(w.bytes.length);
      fs.readSync(this.fd, old, 0, old.length, offset);
      log.push({ offset, bytes: old });
      fs.writeSync(this.fd, w.bytes, 0, w.bytes.length, offset);
    }
  }

  /** Writes that stay for the whole run (under every mutant), undone by `restoreAll`. */
  applyForRun(writes: PhysWrite[]): void {
    this.apply(writes, this.runUndo);
  }

  /** Restores the bytes of the last mutant's writes (newest first). */
  restore(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) fs.writeSync(this.fd, this.undo[i].bytes, 0, this.undo[i].bytes.length, this.undo[i].offset);
    this.undo = [];
  }

  /** Restores the pristine image. */
  restoreAll(): void {
    this.restore();
    this.undo = this.runUndo;
    this.runUndo = [];
    this.restore();
  }

  close(): void {
    this.restoreAll();
    fs.closeSync(this.fd);
  }
}
