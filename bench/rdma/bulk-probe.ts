// Runs inside the rxe guest (bench/figures/bulk-rxe.ts starts it): connects to an agent listening
// on the rxe device and measures save-vmcore against the transport's floor with the same code as
// the shm figures (bench/figures/bulk-shm.ts); prints the figures as one JSON line.
// Usage: node --import tsx bench/rdma/bulk-probe.ts HOST PORT KEYFILE OUTDIR GUEST_MIB RUNS
import { Bench } from '../lib';
import { GrassClient } from '../../src/rdma/client';
import { readKeyFile } from '../../src/rdma/key';
import { VerbsTransport } from '../../src/rdma/verbs/transport';
import { bulkFigures } from '../figures/bulk-shm';

async function main(): Promise<void> {
  const [host, port, keyFile, outDir, guestMiB, runs] = process.argv.slice(2);
  const transport = await VerbsTransport.connect(host, Number(port));
  const client = await GrassClient.attach(transport, readKeyFile(keyFile), { timeoutMs: 30_000 });
  const bench = new Bench('bulk-rxe');
  try {
    await bulkFigures(bench, client, outDir, 'rxe', Number(guestMiB), Number(runs));
  } finally {
    await client.close();
  }
  process.stdout.write(JSON.stringify(bench.figures) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bulk-probe: ${(err as Error).message}\n`);
  process.exit(1);
});
