// Bulk reads kept in flight from a process of its own, as `grass save-vmcore` keeps them: 1 MiB
// BULK_READs of [START, START + LENGTH) over and over on every slot but the urgent one, until
// GOAL bytes have moved; prints "started" once the first reply is in, and at the end the bytes
// moved and the seconds taken as JSON. agent.heartbeat-during-bulk measures heartbeats meanwhile.
//   node --import tsx bench/bulk-load.ts TARGET KEY_FILE START LENGTH GOAL
import { connectTarget } from '../src/rdma/connect';

const CHUNK = 1 << 20;

async function main(): Promise<void> {
  const [target, keyFile, startArg, lengthArg, goalArg] = process.argv.slice(2);
  const start = BigInt(startArg), chunks = Math.floor(Number(lengthArg) / CHUNK), goal = Number(goalArg);
  const session = await connectTarget(target, { keyFile });
  const { client } = session;
  let next = 0, moved = 0, announced = false;
  const began = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    while (moved < goal) {
      const k = next++ % chunks;
      const { data } = await client.bulkRead(start + BigInt(k * CHUNK), CHUNK);
      moved += data.length;
      if (!announced) {
        announced = true;
        process.stdout.write('started\n');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, client.header.slotCount - 1) }, lane));
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  await session.close();
  process.stdout.write(JSON.stringify({ bytes: moved, seconds }) + '\n');
}

void main();
