// One-sided access to the agent's GRASS buffer: the only thing the protocol client needs from
// a transport. shm (a shared-memory file) and verbs (RDMA Read/Write) implement it alike.
//
// Contract, written for the weakest transport (RDMA into GPU memory):
//  - read/write of a range are NOT atomic and their bytes land in no fixed order;
//  - readWord/writeWord of an 8-byte aligned word are single accesses (never torn), which is
//    what the protocol's marks and seqlock versions rely on;
//  - an operation that returns has completed at the remote (a later read sees an earlier write).

export interface Transport {
  /** Human-readable name of the far end, e.g. "shm:/dev/shm/grass-1 (mmap)". */
  readonly name: string;
  /** Size of the remote buffer in bytes. */
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** One 8-byte aligned little-endian word, read in a single access. */
  readWord(offset: number): Promise<bigint>;
  /** One 8-byte aligned little-endian word, written in a single access. */
  writeWord(offset: number, value: bigint): Promise<void>;
  close(): Promise<void>;
  /**
   * Advisory, exclusive claim of the 8 bytes at `offset` among the clients of this buffer
   * (the protocol client claims a slot before using it). False when another client holds it.
   * Transports that cannot arbitrate leave it out; their clients must not share slots.
   */
  tryClaim?(offset: number): Promise<boolean>;
  releaseClaim?(offset: number): Promise<void>;
  /**
   * Whether the far end now serves a different buffer than the one this transport reaches
   * (shm: another file at the path, as when the agent was restarted). Clients must attach again.
   */
  replaced?(): Promise<boolean>;
  /**
   * Whether the agent process that serves the buffer is gone (shm: nobody holds the agent's
   * read lock on the buffer's first word), as opposed to alive but not answering.
   */
  agentGone?(): Promise<boolean>;
  /**
   * The seqlock read of a versioned block done at the far end in one operation: the version
   * word, the block, the version word again. A relay (the monitor's socket) offers it so the
   * three reads happen next to the buffer, between two of the agent's updates, rather than
   * three relay round trips apart. Transports without it get the three reads from
   * readVersioned() below.
   */
  readVersioned?(versionOffset: number, offset: number, length: number): Promise<VersionedRead>;
}

/** A block read between two reads of its version word (equal and even: the block is whole). */
export interface VersionedRead {
  before: bigint;
  bytes: Uint8Array;
  after: bigint;
}

/** version, block, version, in one far-end operation where the transport offers it. */
export async function readVersioned(transport: Transport, versionOffset: number, offset: number, length: number): Promise<VersionedRead> {
  if (transport.readVersioned) return transport.readVersioned(versionOffset, offset, length);
  const before = await transport.readWord(versionOffset);
  const bytes = await transport.read(offset, length);
  const after = await transport.readWord(versionOffset);
  return { before, bytes, after };
}

/** The transport itself failed (buffer gone, connection broken): the agent or the link is dead. */
export class TransportError extends Error {
  constructor(
    readonly transport: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`transport ${transport}: ${message}`, options);
    this.name = 'TransportError';
  }
}

/**
 * The far end answered and refused this client (an agent's --peer list): an access decision by a
 * working agent, not a dead part, so callers report it as a refusal, not as a dead transport.
 */
export class ConnectionRefusedError extends Error {
  constructor(
    readonly transport: string,
    message: string,
  ) {
    super(`transport ${transport}: ${message}`);
    this.name = 'ConnectionRefusedError';
  }
}

/** Bounds and alignment checks shared by every transport. */
export function checkRange(transport: Transport, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > transport.size) {
    throw new TransportError(transport.name, `access of ${length} bytes at offset ${offset} is outside the ${transport.size}-byte buffer`);
  }
}

export function checkWord(transport: Transport, offset: number): void {
  checkRange(transport, offset, 8);
  if (offset % 8 !== 0) {
    throw new TransportError(transport.name, `word access at offset ${offset} is not 8-byte aligned`);
  }
}
