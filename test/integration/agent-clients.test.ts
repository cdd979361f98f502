// Several clients on one agent at once: client processes that share its slots (claims decide
// who uses which), and one client with more requests in flight than there are slots. Every read
// is checked against the guest's RAM file (guest paused), nothing may be refused, and the
// agent's served counter must account for every request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { bootGuest, Guest } from '../../testbed';
import { connectTarget, TargetSession } from '../../src/rdma/connect';
import { GuestAgent, root, startGuestAgent } from './agentHarness';

let guest: Guest;
let agent: GuestAgent;
let session: TargetSession;

before(async () => {
  guest = await bootGuest({ memMiB: 256, cpus: 1 });
  // Few slots, so that the processes below must share them.
  agent = await startGuestAgent(guest, `qemu-ram:${guest.ramFile}`, ['--slots', '3', '--slot-data-bytes', '8192']);
  await guest.pause();
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

function runWorker(iterations: number): Promise<{ requests: number; readsChecked: number; heartbeats: number }> {
  const args = ['--import', 'tsx', path.join(__dirname, 'agentClientWorker.ts'), agent.target, agent.keyFile, guest.ramFile, JSON.stringify(guest.memoryMap().ranges), String(iterations)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, timeout: 180_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`client process failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as { requests: number; readsChecked: number; heartbeats: number });
    });
  });
}

test('three client processes on a 3-slot agent: every request answered, every read correct, none refused', async () => {
  const before = await session.client.liveness();
  const iterations = 60;
  const results = await Promise.all([runWorker(iterations), runWorker(iterations), runWorker(iterations)]);
  for (const r of results) {
    assert.equal(r.readsChecked, iterations);
    assert.equal(r.heartbeats, iterations);
  }
  const after = await session.client.liveness();
  assert.equal(after.requestsRefused, before.requestsRefused, 'no request was refused (no two clients collided on a slot)');
  // Reads of up to 20 000 bytes split over 8 KiB data areas: at least one request per read.
  const lowerBound = results.reduce((sum, r) => sum + r.requests, 0);
  assert.ok(after.requestsServed - before.requestsServed >= BigInt(lowerBound), `served ${after.requestsServed - before.requestsServed} < ${lowerBound}`);
});

test('one client with 40 reads in flight on 3 slots: each gets its own bytes', async () => {
  const range = guest.memoryMap().ranges[0];
  const ram = openSync(guest.ramFile, 'r');
  try {
    const reads = Array.from({ length: 40 }, (_, i) => ({ phys: BigInt(range.physStart) + 0x100000n + BigInt(i) * 12_345n, length: 1000 + i * 700 }));
    const got = await Promise.all(reads.map((r) => session.client.read({ kind: 'physical' }, r.phys, r.length)));
    reads.forEach((r, i) => {
      const expected = Buffer.alloc(r.length);
      readSync(ram, expected, 0, r.length, Number(r.phys - BigInt(range.physStart) + BigInt(range.fileOffset)));
      assert.ok(expected.equals(Buffer.from(got[i])), `read ${i} at 0x${r.phys.toString(16)}`);
    });
  } finally {
    closeSync(ram);
  }
});
