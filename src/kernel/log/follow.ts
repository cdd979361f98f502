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
  /** The record the last poll waited for (seq plus its text, or that it was still reserved). */
  private waitingFor: string | undefined;
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
   * Reads what is new. Like the kernel's own readers, it stops at the first record that is not
   * final (still being written, or open for continuation) rather than pass it, since records
   * after it may be final first on another CPU. It waits at most one poll: a record that stayed
   * the same for two polls is one a stopped (panicked, hung) kernel will never finish, and the
   * records after it, its last words, must still show; an open one is then returned as it is.
   */
  async poll(): Promise<FollowUpdate> {
    const since = this.lastSeq;
    const log = await this.reader.read({ sinceSeq: since });
    const notes = log.notes.filter((n) => !this.noted.has(n));
    for (const n of notes) this.noted.add(n);
    let records = log.records.filter((r) => r.seq <= log.resumeAfterSeq);
    let waitingFor: string | undefined;
    if (log.resumeAfterSeq < log.headSeq) {
      const blocking = log.resumeAfterSeq + 1;
      const open = log.records.find((r) => r.seq === blocking);
      const state = `${blocking}\0${open ? open.text : '(reserved)'}`;
      if (state === this.waitingFor) records = log.records;
      else waitingFor = state;
    }
    this.waitingFor = waitingFor;
    if (records.length > 0) this.lastSeq = records[records.length - 1].seq;
    // From the oldest record on, what the ring dropped before was never asked for.
    return { records, notes, overwritten: since >= 0 ? log.overwritten : 0 };
  }
}
