// The guest's root shell on its second serial port (a unix socket on the host). Each command is
// framed by begin/done lines carrying a token unique to that command, so output left over from
// an earlier command (one that timed out, a background job) is never taken for this one's.
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';

export class SerialTimeoutError extends Error {
  constructor(
    message: string,
    /** Whatever the command had printed when time ran out. */
    readonly partialOutput: string,
  ) {
    super(message);
  }
}

export interface RunResult {
  /** stdout and stderr of the command, interleaved as the guest's tty saw them. */
  stdout: string;
  rc: number;
}

// The guest tty reads lines of at most 4095 bytes in canonical mode.
const MAX_LINE = 3800;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs one command on the guest shell on a fresh connection to `socketPath`. */
export function serialRun(socketPath: string, command: string, timeoutMs: number): Promise<RunResult> {
  const token = randomBytes(6).toString('hex');
  const framed =
    // A subshell, so that `exit` or a failing `set -e` ends the command, not the guest's shell.
    `echo "__BE""GIN__${token}"; (eval ${shellQuote(command)}) </dev/null; echo "__DO""NE__${token} rc=$?"\n`;
  const longest = Math.max(...framed.split('\n').map((l) => Buffer.byteLength(l)));
  if (longest > MAX_LINE) {
    return Promise.reject(
      new Error(`testbed: command line of ${longest} bytes is longer than the guest tty accepts (${MAX_LINE}); put it in a script`),
    );
  }
  const begin = `__BEGIN__${token}\n`;
  const done = new RegExp(`__DONE__${token} rc=(\\d+)\\n`);
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const output = () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const start = text.indexOf(begin);
      return { text, body: start < 0 ? '' : text.slice(start + begin.length) };
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      // Interrupt the command so the shell is usable again, if the guest still runs at all.
      sock.end('\x03\n');
      const { body } = output();
      reject(new SerialTimeoutError(`testbed: no answer within ${timeoutMs} ms to: ${command.slice(0, 200)}`, body));
    }, timeoutMs);
    sock.on('connect', () => sock.write(framed));
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const { body } = output();
      const m = done.exec(body);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        sock.end();
        resolve({ stdout: body.slice(0, m.index), rc: Number(m[1]) });
      }
    });
    sock.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`testbed: guest shell socket ${socketPath}: ${e.message}`));
    });
    sock.on('close', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`testbed: guest shell socket ${socketPath} closed before the command finished (QEMU gone?)`));
    });
  });
}
