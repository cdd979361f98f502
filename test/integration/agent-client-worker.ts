// One client process of test/integration/agent.test.ts (several clients on one agent): attaches
// to the agent and runs a mix of heartbeats, process counts and physical reads, several at once,
// checking every read against the guest's RAM file. Prints one JSON line:
// {requests, readsChecked, heartbeats}.
// argv: TARGET KEY_FILE RAM_FILE RANGES_JSON ITERATIONS
import { closeSync, openSync, readSync } from 'node:fs';
import { connectTarget } from '../../src/rdma/connect';

interface Range {
  physStart: string;
  length: string;
  fileOffset: string;
}

async function main(): Promise<void> {
  const [target, keyFile, ramFile, rangesJson, iterationsText] = process.argv.slice(2);
  const ranges = JSON.parse(rangesJson) as Range[];
  const iterations = Number(iterationsText);
  const ram = openSync(ramFile, 'r');
  const session = await connectTarget(target, { keyFile, timeoutMs: 20_000 });
  let requests = 0;
  let readsChecked = 0;
  let heartbeats = 0;
  try {
    const { client } = session;
    const range = ranges[0];
    const span = Number(BigInt(range.length)) - (1 << 20);
    for (let i = 0; i < iterations; i++) {
      const offset = Math.floor(Math.random() * span) & ~7;
      const length = 1 + Math.floor(Math.random() * 20_000);
      const phys = BigInt(range.physStart) + BigInt(offset);
      const [bytes] = await Promise.all([
        client.read({ kind: 'physical' }, phys, length),
        client.heartbeat().then(() => void heartbeats++),
        client.processCount(),
      ]);
      requests += 3;
      const expected = Buffer.alloc(length);
      readSync(ram, expected, 0, length, Number(phys - BigInt(range.physStart) + BigInt(range.fileOffset)));
      if (!expected.equals(Buffer.from(bytes))) throw new Error(`read of ${length} bytes at physical 0x${phys.toString(16)} differs from the RAM file`);
      readsChecked++;
    }
  } finally {
    await session.close();
    closeSync(ram);
  }
  process.stdout.write(JSON.stringify({ requests, readsChecked, heartbeats }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`worker ${process.pid}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
