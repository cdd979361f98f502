// Captures a testbed guest's RAM at rest for the device run (gpu/device/run.sh): boots a guest,
// starts a few processes, pauses it, and writes .devimg/guest.ram.zst + .devimg/guest.map.json
// (ramFile rewritten to the path the device run decompresses to). .devimg/ is git-ignored and
// travels with `carry`.  node --import tsx gpu/device/capture-image.ts [--mem MiB]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootGuest } from '../../testbed';

async function main(): Promise<void> {
  const memArg = process.argv.indexOf('--mem');
  const memMiB = memArg > 0 ? Number(process.argv[memArg + 1]) : 256;
  const out = path.resolve('.devimg');
  fs.mkdirSync(out, { recursive: true });
  const guest = await bootGuest({ memMiB });
  try {
    await guest.spawn(20, { threads: true });
    await guest.pause();
    execFileSync('zstd', ['-q', '-f', '-T2', '-9', guest.ramFile, '-o', path.join(out, 'guest.ram.zst')]);
    const map = JSON.parse(fs.readFileSync(guest.memoryMapFile, 'utf8'));
    map.ramFile = '/tmp/grass-devimg/guest.ram';
    fs.writeFileSync(path.join(out, 'guest.map.json'), JSON.stringify(map));
    console.log(JSON.stringify({ memMiB, compressedBytes: fs.statSync(path.join(out, 'guest.ram.zst')).size }));
  } finally {
    await guest.down();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
