// Runs inside the rxe guest (bench/figures/rdma-rxe.ts starts it): connects directly to an agent
// listening on the rxe device and prints one JSON line of per-operation times in µs:
//  - word: one 8-byte RDMA WRITE then one 8-byte RDMA READ through the verbs transport (the floor
//    a heartbeat is made of);
//  - heartbeat: GRASS heartbeats (request, mark, polled reply) over the same transport.
// Usage: node --import tsx bench/rdma/probe.ts HOST PORT KEYFILE RUNS
import { GrassClient } from '../../src/rdma/client';
import { readKeyFile } from '../../src/rdma/key';
import { VerbsTransport } from '../../src/rdma/verbs/transport';

async function main(): Promise<void> {
  const [host, port, keyFile, runsText] = process.argv.slice(2);
  const runs = Number(runsText);
  const transport = await VerbsTransport.connect(host, Number(port));
  const client = await GrassClient.attach(transport, readKeyFile(keyFile));
  const word: number[] = [];
  const heartbeat: number[] = [];
  // A word in the header's reserved tail: nothing reads it.
  const scratch = 4096 - 8;
  for (let i = -20; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await transport.writeWord(scratch, BigInt(i + 100));
    await transport.readWord(scratch);
    const t1 = process.hrtime.bigint();
    const hb = await client.heartbeat();
    if (i >= 0) {
      word.push(Number(t1 - t0) / 1000);
      heartbeat.push(Number(hb.roundTripNs) / 1000);
    }
  }
  await client.close();
  process.stdout.write(JSON.stringify({ word, heartbeat }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`probe: ${(err as Error).message}\n`);
  process.exit(1);
});
