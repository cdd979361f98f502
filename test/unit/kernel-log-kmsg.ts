// The guest's own view of its log: /dev/kmsg records as the kernel formats them
// (Documentation/ABI/testing/dev-kmsg), unescaped back to the bytes that were logged.

export interface KmsgTruth {
  seq: number;
  /** Syslog priority: facility * 8 + level. */
  priority: number;
  timestampUs: number;
  /** The 'c' flag: LOG_CONT. */
  continuation: boolean;
  text: string;
  /** Dictionary lines (SUBSYSTEM=, DEVICE=). */
  fields: Record<string, string>;
}

/** "prio,seq,usec,flags[,...];text" with \xNN escapes, then " KEY=value" lines. */
export function parseKmsg(text: string): KmsgTruth[] {
  const out: KmsgTruth[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) {
      const eq = line.indexOf('=');
      out[out.length - 1].fields[line.slice(1, eq)] = line.slice(eq + 1);
      continue;
    }
    const semi = line.indexOf(';');
    if (semi < 0) continue;
    const [prio, seq, usec, flags] = line.slice(0, semi).split(',');
    const raw = line.slice(semi + 1);
    const bytes: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const esc = /^\\x([0-9a-f]{2})/.exec(raw.slice(i, i + 4));
      if (esc) {
        bytes.push(parseInt(esc[1], 16));
        i += 3;
      } else {
        bytes.push(...Buffer.from(raw[i], 'latin1'));
      }
    }
    out.push({
      seq: Number(seq),
      priority: Number(prio),
      timestampUs: Number(usec),
      continuation: flags === 'c',
      text: new TextDecoder().decode(new Uint8Array(bytes)),
      fields: {},
    });
  }
  return out;
}
