// Following a target's log: each poll returns the records that are new since the last one, once
// each, in order. Shared by `grass dmesg --follow` and the log document in VS Code.

import type { KernelLogReader, KernelLogRecord } from './ringbuffer';

export interface FollowUpdate {
  /** New records, in sequence order; none is returned twice. */
  records: KernelLogRecord[];
  /** Notes (skipped records) not reported by an earlier poll. */
  notes: string[];
  /** Records the ring overwrote before this poll could read them. */
  overwritten: number;
}

export class KernelLogFollower {
  private lastSeq: number;
  /** The record that was still open for continuation at the last poll, as seq and text. */
  private open: string | undefined;
  private readonly noted = new Set<string>();

  /** Starts after `sinceSeq` (-1: from the oldest record still in the ring). */
  constructor(
    private readonly reader: KernelLogReader,
    sinceSeq = -1,
  ) {
    this.lastSeq = sinceSeq;
  }

  /** The last sequence number returned (or the starting point). */
  get lastReturnedSeq(): number {
    return this.lastSeq;
  }

  /**
   * Reads what is new. A record still open for continuation (the kernel's last, unterminated
   * line) is held back until it is final, or until it stayed the same for two polls: a kernel
   * that stopped (panicked, hung) never finishes it, and its last words must still show.
   */
  async poll(): Promise<FollowUpdate> {
    const since = this.lastSeq;
    const log = await this.reader.read({ sinceSeq: since });
    const notes = log.notes.filter((n) => !this.noted.has(n));
    for (const n of notes) this.noted.add(n);
    const records: KernelLogRecord[] = [];
    let open: string | undefined;
    for (const r of log.records) {
      if (!r.finalized) {
        const key = `${r.seq}\0${r.text}`;
        if (key !== this.open) {
          open = key;
          break;
        }
      }
      records.push(r);
      this.lastSeq = r.seq;
    }
    this.open = open;
    // From the oldest record on, what the ring dropped before was never asked for.
    return { records, notes, overwritten: since >= 0 ? log.overwritten : 0 };
  }
}
