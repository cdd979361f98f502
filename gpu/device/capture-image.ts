// Captures a testbed guest's RAM for the device run (gpu/device/run.sh): boots a guest, starts a
// few processes, brings it into the asked state, pauses it, and writes .devimg/img-NAME.ram.xz +
// .devimg/img-NAME.map.json (ramFile rewritten by run.sh to where it decompresses the image).
// .devimg/ is git-ignored and travels with `carry`, so each image must stay small (xz).
//   node --import tsx gpu/device/capture-image.ts [--state rest|panic|f1|f2|f3|f5] [--kaslr] [--mem MiB]
// rest: paused while idle. panic: `echo c > /proc/sysrq-trigger` (the guest spins in its panic
// loop, panic=0). f1-f5: the testbed's hang modules, captured once the hang has run a few seconds.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootGuest, type FaultKind } from '../../testbed';

const STATES = ['rest', 'panic', 'f1', 'f2', 'f3', 'f5'] as const;
type State = (typeof STATES)[number];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const memMiB = Number(option('--mem') ?? 256);
  const state = (option('--state') ?? 'rest') as State;
  if (!STATES.includes(state)) throw new Error(`capture-image: --state ${state}: expected one of ${STATES.join(', ')}`);
  const kaslr = process.argv.includes('--kaslr');
  const name = `${state}${kaslr ? '-kaslr' : ''}`;
  const out = path.resolve('.devimg');
  fs.mkdirSync(out, { recursive: true });
  const guest = await bootGuest({ memMiB, kaslr });
  try {
    await guest.spawn(20, { threads: true });
    if (state === 'panic') {
      await guest.fault('panic');
      await guest.waitForConsole(/Kernel panic - not syncing/, 20_000);
      await sleep(1000);
    } else if (state !== 'rest') {
      await guest.fault(state as FaultKind, { delayMs: 500 });
      await sleep(5000);  // the hang has begun (delay 0.5 s) and held for a while
    }
    await guest.pause();
    const ram = path.join(out, `img-${name}.ram.xz`);
    execFileSync('sh', ['-c', `xz -T2 -6 -c "$1" > "$2"`, 'sh', guest.ramFile, ram]);
    const map = JSON.parse(fs.readFileSync(guest.memoryMapFile, 'utf8'));
    map.ramFile = '';
    fs.writeFileSync(path.join(out, `img-${name}.map.json`), JSON.stringify(map));
    console.log(JSON.stringify({ name, state, kaslr, memMiB, compressedBytes: fs.statSync(ram).size }));
  } finally {
    await guest.down();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
