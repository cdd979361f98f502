// A minimal QMP client: one connection per call, so the API and `grass testbed` processes can
// drive the same guest one after another (QEMU serves one QMP client at a time).
import * as net from 'node:net';

export class QmpError extends Error {}

type QmpReply = { return?: unknown; error?: { class: string; desc: string }; event?: string; QMP?: unknown };

/** Runs QMP commands in order on a fresh connection and returns their results. */
export async function qmpExecute(
  socketPath: string,
  commands: { execute: string; arguments?: Record<string, unknown> }[],
  timeoutMs = 10_000,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const results: unknown[] = [];
    // The greeting, then qmp_capabilities, then each command gets one reply (events are skipped).
    const queue = [{ execute: 'qmp_capabilities' }, ...commands];
    let sent = 0;
    let greeted = false;
    let buffered = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new QmpError(`QMP ${socketPath}: no reply within ${timeoutMs} ms to ${queue[Math.max(sent - 1, 0)].execute}`));
    }, timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(results.slice(1));
    };
    const sendNext = () => {
      if (sent === queue.length) return finish();
      sock.write(JSON.stringify(queue[sent++]) + '\n');
    };
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(new QmpError(`QMP ${socketPath}: ${e.message}`)));
    sock.on('close', () => {
      if (results.length < queue.length) {
        // `quit` closes the connection before or after its reply; anything else is an error.
        if (sent === queue.length && queue[sent - 1].execute === 'quit') return finish();
        finish(new QmpError(`QMP ${socketPath}: connection closed during ${queue[Math.max(sent - 1, 0)].execute}`));
      }
    });
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        let msg: QmpReply;
        try {
          msg = JSON.parse(line) as QmpReply;
        } catch {
          return finish(new QmpError(`QMP ${socketPath}: unparsable line ${line.slice(0, 200)}`));
        }
        if (!greeted) {
          if (msg.QMP === undefined) return finish(new QmpError(`QMP ${socketPath}: no greeting`));
          greeted = true;
          sendNext();
          continue;
        }
        if (msg.event) continue;
        if (msg.error) {
          return finish(new QmpError(`QMP ${queue[sent - 1].execute}: ${msg.error.class}: ${msg.error.desc}`));
        }
        results.push(msg.return);
        sendNext();
      }
    });
  });
}

export async function qmp(socketPath: string, execute: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown> {
  const [result] = await qmpExecute(socketPath, [{ execute, arguments: args }], timeoutMs);
  return result;
}

/** QEMU's run state: "running", "paused", "guest-panicked", "shutdown", ... */
export async function qmpStatus(socketPath: string): Promise<string> {
  const r = (await qmp(socketPath, 'query-status')) as { status: string };
  return r.status;
}
