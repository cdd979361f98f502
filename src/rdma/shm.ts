// The shm transport: same-host one-sided access to an agent's GRASS buffer in a shared-memory
// file. Two ways to reach the pages, measured in docs/protocol.md:
//  - "mmap": libc mmap through koffi and koffi.view over the mapping; a read is a memcpy, a
//    word is one Atomics load/store (a single 8-byte access). The default.
//  - "pread": fs.readSync/writeSync with positions on the same tmpfs pages, one syscall per
//    access. For runtimes that forbid external ArrayBuffers (Electron's V8 sandbox), where
//    koffi.view throws; the kernel copies an aligned 8-byte word in one access in practice.
// Both arbitrate slots between client processes with open-file-description byte-range locks
// (fcntl F_OFD_SETLK) on the buffer file: no extra files, released when the process dies.
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import koffi from 'koffi';
import { checkRange, checkWord, Transport, TransportError } from './transport';

export type ShmAccess = 'mmap' | 'pread';

/** Opens the buffer with `access`; without one, mmap, falling back to pread where it fails. */
export async function openShmTransport(path: string, access?: ShmAccess): Promise<Transport> {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    throw new TransportError(`shm:${path}`, `cannot open the agent's buffer: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) throw new TransportError(`shm:${path}`, 'the buffer file is empty (agent not started yet?)');
    if (access === 'pread') return new PreadTransport(path, fd, size);
    try {
      return new MmapTransport(path, fd, size);
    } catch (err) {
      if (access === 'mmap') throw err;
      return new PreadTransport(path, fd, size);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

type NativeFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;
interface Libc {
  mmap: NativeFunction;
  munmap: NativeFunction;
  fcntl: NativeFunction;
}
let libc: Libc | undefined;
function loadLibc(): Libc {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      munmap: lib.func('int munmap(void *addr, size_t length)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    };
  }
  return libc;
}

/** Linux x86-64 ABI values this file uses; test/unit/protocol-shm.test.ts checks them against the C headers. */
export const libcAbi = {
  F_OFD_GETLK: 36,
  F_OFD_SETLK: 37,
  F_RDLCK: 0,
  F_WRLCK: 1,
  F_UNLCK: 2,
  EAGAIN: 11,
  EACCES: 13,
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 1,
  /** struct flock: l_whence stays 0 (SEEK_SET), l_pid 0 as OFD locks require. */
  flock: { size: 32, l_type: 0, l_whence: 2, l_start: 8, l_len: 16, l_pid: 24 },
} as const;
const { F_OFD_GETLK, F_OFD_SETLK, F_WRLCK, F_UNLCK, EAGAIN, EACCES, PROT_READ, PROT_WRITE, MAP_SHARED } = libcAbi;

function ofdLock(transport: string, fd: number, offset: number, type: number): boolean {
  const lock = Buffer.alloc(libcAbi.flock.size);
  lock.writeInt16LE(type, libcAbi.flock.l_type);
  lock.writeBigInt64LE(BigInt(offset), libcAbi.flock.l_start);
  lock.writeBigInt64LE(8n, libcAbi.flock.l_len);
  if (loadLibc().fcntl(fd, F_OFD_SETLK, 'void *', lock) === 0) return true;
  const errno = koffi.errno();
  if (type === F_WRLCK && (errno === EAGAIN || errno === EACCES)) return false;
  throw new TransportError(transport, `fcntl(F_OFD_SETLK) at offset ${offset} failed (errno ${errno})`);
}

/**
 * The agent holds a read lock (F_OFD_SETLK, F_RDLCK) on the buffer's first 8 bytes for as long as
 * its process lives (gpu/src/server/buffer_setup.cpp); clients never lock there. False when no
 * process holds a lock that would conflict with a write lock on them: the agent is gone.
 */
function agentHoldsBuffer(transport: string, fd: number): boolean {
  const lock = Buffer.alloc(libcAbi.flock.size);
  lock.writeInt16LE(F_WRLCK, libcAbi.flock.l_type);
  lock.writeBigInt64LE(0n, libcAbi.flock.l_start);
  lock.writeBigInt64LE(8n, libcAbi.flock.l_len);
  if (loadLibc().fcntl(fd, F_OFD_GETLK, 'void *', lock) !== 0) {
    throw new TransportError(transport, `fcntl(F_OFD_GETLK) failed (errno ${koffi.errno()})`);
  }
  return lock.readInt16LE(libcAbi.flock.l_type) !== F_UNLCK;
}

/** True when the file at `path` is no longer the one open as `fd` (removed or recreated). */
function fileReplaced(path: string, fd: number): boolean {
  try {
    const now = statSync(path);
    const open = fstatSync(fd);
    return now.ino !== open.ino || now.dev !== open.dev;
  } catch {
    return true;
  }
}

const MAP_FAILED = 0xffffffffffffffffn;

class MmapTransport implements Transport {
  readonly name: string;
  private bytes: Uint8Array | undefined;
  private words: BigUint64Array | undefined;
  private readonly mapping: unknown;

  constructor(
    private readonly path: string,
    private fd: number,
    readonly size: number,
  ) {
    this.name = `shm:${path} (mmap)`;
    const { mmap } = loadLibc();
    const pointer = mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (pointer === null || koffi.address(pointer) === MAP_FAILED) {
      throw new TransportError(this.name, `mmap of ${size} bytes failed (errno ${koffi.errno()})`);
    }
    this.mapping = pointer;
    let view: ArrayBuffer;
    try {
      view = koffi.view(pointer, size);
    } catch (err) {
      loadLibc().munmap(pointer, size);
      throw new TransportError(this.name, `cannot view the mapping (external buffers forbidden here?): ${(err as Error).message}`, { cause: err });
    }
    this.bytes = new Uint8Array(view);
    this.words = new BigUint64Array(view, 0, Math.floor(size / 8));
  }

  private live(): { bytes: Uint8Array; words: BigUint64Array } {
    if (!this.bytes || !this.words) throw new TransportError(this.name, 'used after close');
    return { bytes: this.bytes, words: this.words };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const { bytes } = this.live();
    checkRange(this, offset, length);
    // allocUnsafe: the copy overwrites every byte, so zero-filling first would be wasted work.
    const out = Buffer.allocUnsafe(length);
    out.set(bytes.subarray(offset, offset + length));
    return out;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const { bytes } = this.live();
    checkRange(this, offset, data.length);
    bytes.set(data, offset);
  }

  async readWord(offset: number): Promise<bigint> {
    const { words } = this.live();
    checkWord(this, offset);
    return Atomics.load(words, offset / 8);
  }

  async writeWord(offset: number, value: bigint): Promise<void> {
    const { words } = this.live();
    checkWord(this, offset);
    Atomics.store(words, offset / 8, value);
  }

  async tryClaim(offset: number): Promise<boolean> {
    this.live();
    checkWord(this, offset);
    return ofdLock(this.name, this.fd, offset, F_WRLCK);
  }

  async releaseClaim(offset: number): Promise<void> {
    if (this.bytes) ofdLock(this.name, this.fd, offset, F_UNLCK);
  }

  async replaced(): Promise<boolean> {
    this.live();
    return fileReplaced(this.path, this.fd);
  }

  async agentGone(): Promise<boolean> {
    this.live();
    return !agentHoldsBuffer(this.name, this.fd);
  }

  async close(): Promise<void> {
    if (!this.bytes) return;
    // Drop the views before unmapping: any later access must fail in JS, not fault.
    this.bytes = undefined;
    this.words = undefined;
    loadLibc().munmap(this.mapping, this.size);
    closeSync(this.fd);
  }
}

class PreadTransport implements Transport {
  readonly name: string;
  private open = true;
  private readonly word = Buffer.alloc(8);

  constructor(
    private readonly path: string,
    private fd: number,
    readonly size: number,
  ) {
    this.name = `shm:${path} (pread)`;
  }

  private check(): void {
    if (!this.open) throw new TransportError(this.name, 'used after close');
  }

  private io<T>(what: string, offset: number, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new TransportError(this.name, `${what} at offset ${offset} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.check();
    checkRange(this, offset, length);
    const out = Buffer.allocUnsafe(length);
    const got = this.io('read', offset, () => readSync(this.fd, out, 0, length, offset));
    if (got !== length) throw new TransportError(this.name, `short read at offset ${offset}: ${got} of ${length} bytes (buffer file truncated?)`);
    return out;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check();
    checkRange(this, offset, data.length);
    const put = this.io('write', offset, () => writeSync(this.fd, data, 0, data.length, offset));
    if (put !== data.length) throw new TransportError(this.name, `short write at offset ${offset}: ${put} of ${data.length} bytes`);
  }

  async readWord(offset: number): Promise<bigint> {
    this.check();
    checkWord(this, offset);
    const got = this.io('read', offset, () => readSync(this.fd, this.word, 0, 8, offset));
    if (got !== 8) throw new TransportError(this.name, `short read at offset ${offset}`);
    return this.word.readBigUInt64LE(0);
  }

  async writeWord(offset: number, value: bigint): Promise<void> {
    this.check();
    checkWord(this, offset);
    const word = Buffer.alloc(8);
    word.writeBigUInt64LE(value);
    const put = this.io('write', offset, () => writeSync(this.fd, word, 0, 8, offset));
    if (put !== 8) throw new TransportError(this.name, `short write at offset ${offset}`);
  }

  async tryClaim(offset: number): Promise<boolean> {
    this.check();
    checkWord(this, offset);
    return ofdLock(this.name, this.fd, offset, F_WRLCK);
  }

  async releaseClaim(offset: number): Promise<void> {
    if (this.open) ofdLock(this.name, this.fd, offset, F_UNLCK);
  }

  async replaced(): Promise<boolean> {
    this.check();
    return fileReplaced(this.path, this.fd);
  }

  async agentGone(): Promise<boolean> {
    this.check();
    return !agentHoldsBuffer(this.name, this.fd);
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd);
  }
}
