// Guest options in one boot: KASLR on (bzImage), 3 GiB of RAM (q35 puts 1 GiB of it above
// 4 GiB), `-cpu max` (5-level paging), a swap disk and a scratch disk; then a panic.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootGuest, Guest } from '../../testbed';
import { elfSectionAddress, guestIomem, guestLeftovers, guestSymbols, kernelImagePhys, sleep } from './testbed-support';

describe('testbed: KASLR, RAM above 4 GiB, -cpu max, swap and disk, panic', () => {
  let guest: Guest;
  before(async () => {
    guest = await bootGuest({ kaslr: true, memMiB: 3072, cpus: 2, cpuModel: 'max', swapMiB: 256, diskMiB: 64 });
    process.stderr.write(`# testbed: booted ${guest.kernelDir.abi} (kaslr, bzImage, 3 GiB, -cpu max) in ${guest.bootMs} ms\n`);
  });
  after(async () => {
    if (!guest) return;
    await guest.down();
    assert.deepEqual(guestLeftovers(guest), []);
  });

  it('KASLR slides the kernel image by a multiple of 2 MiB', async () => {
    assert.match(await guest.exec('cat /proc/cmdline'), /\bkaslr\b/);
    const { _text } = await guestSymbols(guest, ['_text']);
    const linked = elfSectionAddress(guest.kernelDir.vmlinux, '.text');
    assert.notEqual(_text, linked, 'the image moved');
    assert.equal((_text - linked) % (2n << 20n), 0n);
  });

  it('-cpu max gives 5-level paging and 1 GiB pages, and the kernel uses 5 levels', async () => {
    const flags = /^flags\s*:(.*)$/m.exec(await guest.exec('cat /proc/cpuinfo'))?.[1].split(/\s+/) ?? [];
    assert.ok(flags.includes('la57'), 'la57 in /proc/cpuinfo');
    assert.ok(flags.includes('pdpe1gb'), 'pdpe1gb in /proc/cpuinfo');
    // The kernel's own switch, read from its memory through the map.
    const l5 = guest.readPhysical(await kernelImagePhys(guest, '__pgtable_l5_enabled'), 4).readUInt32LE();
    assert.equal(l5, 1);
  });

  it('memory map: RAM above 4 GiB lands at its file offset; covers /proc/iomem; marker pages and the banner found in the RAM file', async () => {
    const map = guest.memoryMap();
    assert.equal(map.ranges.reduce((a, r) => a + BigInt(r.length), 0n), 3072n << 20n);
    assert.ok(map.ranges.some((r) => BigInt(r.physStart) >= 1n << 32n), 'a range above 4 GiB');
    const ram = (await guestIomem(guest)).filter((x) => x.name === 'System RAM');
    assert.ok(ram.some((r) => r.end >= 1n << 32n), 'the guest has System RAM above 4 GiB');
    for (const r of ram) {
      assert.ok(map.ranges.some((m) => r.start >= BigInt(m.physStart) && r.end < BigInt(m.physStart) + BigInt(m.length)));
    }
    // Pages the guest filled with text and located through /proc/self/pagemap.
    const out = await guest.exec(
      'grass-guest marker 4096 > /tmp/markers & while ! grep -q "^done" /tmp/markers; do sleep 0.2; done; ' +
        "grep -E '^[0-9a-f]{9,} ' /tmp/markers | head -20",
      { timeoutMs: 60_000 },
    );
    const markers = [...out.matchAll(/^([0-9a-f]+) (GRASS-MARKER .* end)$/gm)].map((m) => ({ phys: BigInt('0x' + m[1]), text: m[2] }));
    assert.ok(markers.some((m) => m.phys >= 1n << 32n), 'some marker pages above 4 GiB');
    for (const m of markers) assert.equal(guest.readPhysical(m.phys, m.text.length).toString('latin1'), m.text);
    // And the kernel image, wherever KASLR put it physically.
    const version = (await guest.exec('cat /proc/version')).trim();
    assert.equal(guest.readPhysical(await kernelImagePhys(guest, 'linux_banner'), Buffer.byteLength(version)).toString('utf8'), version);
  });

  it('swap and the scratch disk are in use', async () => {
    const swaps = await guest.exec('cat /proc/swaps');
    const m = /^\/dev\/vda\s+\S+\s+(\d+)/m.exec(swaps);
    assert.ok(m, swaps);
    assert.ok(Number(m[1]) > 250 * 1024 && Number(m[1]) <= 256 * 1024);
    assert.equal((await guest.exec('echo data > /mnt/disk/f && sync && cat /mnt/disk/f && grep " /mnt/disk " /proc/mounts | cut -d" " -f1')).trim(), 'data\n/dev/vdb');
  });

  it('panic: QEMU reports guest-panicked, the console has the panic, RAM stays readable', async () => {
    const bannerPhys = await kernelImagePhys(guest, 'linux_banner');
    const version = (await guest.exec('cat /proc/version')).trim();
    const r = await guest.fault('panic');
    assert.equal(r.answered, false);
    for (let i = 0; i < 100 && (await guest.status()) !== 'guest-panicked'; i++) await sleep(100);
    assert.equal(await guest.status(), 'guest-panicked');
    await guest.waitForConsole(/Kernel panic - not syncing: sysrq triggered crash/, 10_000);
    assert.equal(guest.readPhysical(bannerPhys, Buffer.byteLength(version)).toString('utf8'), version);
  });
});
