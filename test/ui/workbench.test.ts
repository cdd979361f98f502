// The UI test of issue 8: the workbench in Chromium driven as a person would — command palette
// → set the key and connect to the demo target → expand a process → open the memory inspector
// at init_task → decode it as task_struct → read comm (and follow init_task.tasks to the next
// task) — asserting the text shown against the guest itself, in a dark and a light theme,
// with screenshots of each panel under test-results/ui/ (git-ignored; the paths are printed).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bootGuest, type Guest } from '../../testbed';
import { grassJson, sameComm, startGuestAgent, type GuestAgent } from '../integration/agent-harness';
import { ROOT, waitUntil, Workbench, type Frame } from './workbench';

const TARGET = 'demo';
/** The extension's icon in the activity bar: there once the workbench loaded the extension. */
const GRASS_ACTIVITY = '.activitybar .action-item a[aria-label^="GRASS"]';
const SHOTS = path.join(ROOT, 'test-results/ui');
/** Where the physical inspector goes: 16 MiB, inside the guest's RAM (the kernel's load address without KASLR). */
const PHYSICAL_ADDRESS = '0x1000000';
/** Physical memory no guest of 512 MiB has (4 GiB up; its map ends below). */
const BEYOND_RAM = '0x100000000';
const THEMES = [
  { name: 'Default Dark Modern', label: 'Dark Modern', kind: 'dark', workbenchClass: 'vs-dark', webviewClass: 'vscode-dark' },
  { name: 'Default Light Modern', label: 'Light Modern', kind: 'light', workbenchClass: 'vs', webviewClass: 'vscode-light' },
] as const;

let guest: Guest;
let agent: GuestAgent;
let workbench: Workbench;
let linkDir: string | undefined;
const shots: string[] = [];

before(async () => {
  // The guest boots while code-server starts (both take tens of seconds on a loaded 2-core
  // host). The demo target's address is known before its agent runs: a link that is pointed at
  // the agent's buffer once it serves (settings changed after start reach VS Code late or not at all).
  linkDir = mkdtempSync(path.join(tmpdir(), 'grass-ui-target-'));
  const bufferLink = path.join(linkDir, 'buffer');
  const started = Workbench.start({ 'workbench.colorTheme': THEMES[0].name, 'grass.targets': [{ name: TARGET, address: `shm:${bufferLink}` }] }, GRASS_ACTIVITY).then(
    (w) => (workbench = w),
  );
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  agent = await startGuestAgent(guest);
  symlinkSync(agent.shmPath, bufferLink);
  await started;
});

after(async () => {
  await workbench?.close();
  await agent?.stop();
  await guest?.down();
  if (linkDir) rmSync(linkDir, { recursive: true, force: true });
  if (shots.length) process.stdout.write(`ui screenshots:\n${shots.map((s) => `  ${path.relative(ROOT, s)}`).join('\n')}\n`);
});

async function shoot(name: string, element?: Parameters<Workbench['screenshot']>[1]): Promise<void> {
  const file = path.join(SHOTS, `${name}.png`);
  await workbench.screenshot(file, element);
  shots.push(file);
}

/** The text of the one element `selector` names in a webview page, once it matches `pattern`. */
function webviewText(frame: Frame, selector: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return waitUntil(`${selector} to show ${pattern}`, async () => {
    const text = (await frame.locator(selector).allInnerTexts()).join('\n');
    return pattern.test(text) ? text : undefined;
  }, timeoutMs);
}

/**
 * Every aligned word on screen that points into init_task (address from the guest's own
 * /proc/kallsyms) is annotated `init_task+0x…`; init_task's list heads point at themselves, so
 * there is at least one.
 */
async function assertSymbolAnnotations(frame: Frame, initTaskShown: bigint): Promise<{ address: bigint; value: bigint; symbol: string }> {
  const kallsyms = await guest.exec('grep " init_task$" /proc/kallsyms');
  const initTask = BigInt(`0x${kallsyms.trim().split(/\s+/)[0]}`);
  assert.equal(initTaskShown, initTask, `the inspector went to ${initTaskShown.toString(16)}, the guest's kallsyms says init_task is at ${kallsyms}`);
  const rows = frame.locator('.row');
  let checked = 0;
  let first: { address: bigint; value: bigint; symbol: string } | undefined;
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    const bytes = rowBytes(await row.locator('.hex').innerText());
    if (bytes.length !== 16) continue;
    const annotation = (await row.locator('.ann').allInnerTexts()).join('');
    for (const offset of [0, 8]) {
      const value = bytes.readBigUInt64LE(offset);
      if (value < initTask || value >= initTask + 0x1000n) continue;
      const symbol = value === initTask ? 'init_task' : `init_task+0x${(value - initTask).toString(16)}`;
      assert.ok(annotation.includes(`+${offset}: ${symbol}`), `row ${await row.getAttribute('data-address')}: word ${value.toString(16)} annotated '${annotation}', not ${symbol}`);
      first ??= { address: BigInt((await row.getAttribute('data-address'))!) + BigInt(offset), value, symbol };
      checked++;
    }
  }
  assert.ok(first, 'no word on screen points into init_task');
  return first;
}

/** The hex bytes a memory inspector row shows (1-byte groups), as a Buffer. */
/**
 * Picks an option of a webview's dropdown (a vscode-elements single select) as a person does:
 * opens it and clicks the option the select renders in its list, by the label shown.
 */
async function chooseOption(frame: Frame, selectId: string, label: string): Promise<void> {
  await frame.locator(`#${selectId}`).click();
  await frame.locator(`#${selectId} li[role="option"]:has-text(${JSON.stringify(label)})`).first().click();
}

function rowBytes(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

test('command palette → connect → process → memory at init_task → task_struct → comm, in dark and light themes', async () => {
  try {
    await personFlow();
  } catch (err) {
    await shoot('failure').catch(() => undefined);
    throw err;
  }
});

async function personFlow(): Promise<void> {
  const { page } = workbench;
  const keyHex = readFileSync(agent.keyFile, 'utf8').trim();
  // A multi-threaded process to expand: its threads are the children in the tree.
  const holder = await guest.spawn(3, { threads: true });

  // The GRASS side bar: the demo target listed (the settings were written after start).
  await page.locator(GRASS_ACTIVITY).click({ timeout: 10_000 });
  const targets = workbench.viewRows('Targets');
  await waitUntil(`${TARGET} in the Targets view`, async () => (await targets.allInnerTexts()).some((t) => t.endsWith(` · ${TARGET}`)), 30_000);
  // The key typed with a slip (a password input: never shown), checked against the agent at once.
  await workbench.command('GRASS: Set Target Key…');
  await waitUntil('the key input, as a password field', async () => (await page.locator('.quick-input-widget .quick-input-box input[type="password"]').count()) > 0);
  const slipped = keyHex.slice(0, -1) + (keyHex.endsWith('0') ? '1' : '0');
  await workbench.answer(`key for ${TARGET}`, slipped);
  const refused = await waitUntil('the refused-key warning', async () => (await workbench.notifications()).find((t) => t.includes('refused this key')), 30_000);
  assert.ok(refused.includes(`GRASS: bad authenticator — the agent of '${TARGET}' refused this key; it was not stored.`), refused);
  assert.ok(refused.includes('Enter Key…') && refused.includes('From Key File…'), refused);
  // Its Enter Key… button, and the key right this time.
  await workbench.command('Notifications: Show Notifications');
  await page.locator('.notifications-center .notification-list-item:has-text("refused this key") .monaco-button:has-text("Enter Key…")').click({ timeout: 10_000 });
  await workbench.answer(`key for ${TARGET}`, keyHex);
  await waitUntil('the key-checked message', async () => (await workbench.notifications()).some((t) => t.includes(`GRASS: key for '${TARGET}' checked: its agent answered.`)), 30_000);
  await workbench.command('GRASS: Connect to Target…');
  // Connected: the status bar shows the heartbeat's round trip (`demo: N µs`).
  await waitUntil('the heartbeat in the status bar', async () => (await page.locator('.statusbar-item').allInnerTexts()).some((t) => t.includes(`${TARGET}:`) && /µs/.test(t)), 30_000).catch(async (err: Error) => {
    throw new Error(`${err.message}; notifications: ${JSON.stringify(await workbench.notifications())}`);
  });

  // Processes: the holder's row, expanded, shows its threads as the guest lists them.
  const threadPids = (await guest.exec(`ls /proc/${holder.holderPid}/task`)).split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
  const comm = (await guest.exec(`cat /proc/${holder.holderPid}/comm`)).trim();
  const rows = workbench.viewRows('Processes');
  // The tree is a virtual list: filter it to the process, as a person looking for a pid would.
  await waitUntil('the first processes in the tree', async () => (await rows.count()) > 0, 30_000);
  await workbench.command('GRASS: Filter Processes…');
  await workbench.answer('filter processes', String(holder.holderPid));
  const holderRow = await waitUntil(`pid ${holder.holderPid} in the Processes view`, async () => {
    const texts = await rows.allInnerTexts();
    const i = texts.findIndex((t) => t.startsWith(`${holder.holderPid} `));
    return i >= 0 ? rows.nth(i) : undefined;
  }, 30_000);
  // Label `pid comm`, then the description (state · CPU · RSS · threads) as the guest counts them.
  const holderText = await holderRow.innerText();
  assert.ok(holderText.startsWith(`${holder.holderPid} ${comm}`), holderText);
  assert.match(holderText, new RegExp(`· ${threadPids.length} threads$`));
  await holderRow.locator('.monaco-tl-twistie').click();
  const shownThreads = await waitUntil('the threads under the process', async () => {
    const texts = await rows.allInnerTexts();
    const pids = texts.map((t) => Number(/^(\d+) /.exec(t)?.[1])).filter((p) => threadPids.includes(p) && p !== holder.holderPid);
    return pids.length === threadPids.length - 1 ? pids.sort((a, b) => a - b) : undefined;
  });
  assert.deepEqual(shownThreads, threadPids.filter((p) => p !== holder.holderPid));
  await shoot(`processes-${THEMES[0].kind}`, page.locator('.part.sidebar'));

  // Memory inspector at init_task, from the palette. Its first row against `grass read`.
  await workbench.command('GRASS: Read Memory…');
  await workbench.answer('read memory', 'init_task');
  const inspector = await workbench.webview('Memory: init_task (kernel-virtual)');
  const truth = await grassJson<{ address: string; hex: string }>(['read', 'init_task', '16', '--target', agent.target, '--key-file', agent.keyFile]);
  const firstRow = inspector.locator(`.row[data-address="${truth.address}"] .hex`);
  const shown = await waitUntil('init_task\'s bytes in the inspector', async () => {
    const text = await firstRow.innerText({ timeout: 1000 });
    return /^[0-9a-f\s]+$/.test(text.trim()) ? text : undefined;
  }, 20_000);
  assert.equal(rowBytes(shown).toString('hex'), truth.hex);
  const word = await assertSymbolAnnotations(inspector, BigInt(truth.address));
  // The panel says which target it reads.
  assert.equal(await inspector.locator('#target').innerText(), `Reading ${TARGET} (shm:${path.join(linkDir!, 'buffer')}).`);
  // The data inspector: the 8 bytes from a clicked byte as numbers and as a pointer with its symbol
  // (the guest's kallsyms placed init_task; the word's value is the guest's, read above).
  await inspector.locator(`.byte[data-address="0x${word.address.toString(16)}"]`).click();
  const pointerLine = await webviewText(inspector, '#data-inspector tr[data-kind="pointer"] td', /<init_task/);
  assert.equal(pointerLine, `0x${word.value.toString(16)} <${word.symbol}>`);
  assert.equal(await inspector.locator('#data-inspector tr[data-kind="u64"] td').innerText(), `${word.value} (0x${word.value.toString(16)})`);
  assert.equal(await inspector.locator('#data-inspector tr[data-kind="u8"] td').innerText(), `${word.value & 0xffn} (0x${(word.value & 0xffn).toString(16)})`);
  await shoot(`memory-inspector-data-${THEMES[0].kind}`, page.locator('.part.editor'));
  // Back to init_task's first byte: Decode as struct… below decodes at the selection.
  await inspector.locator(`.byte[data-address="${truth.address}"]`).click();

  // A second inspector at the same time, on physical memory: its bytes against the guest's RAM file.
  await workbench.command('GRASS: Open Memory Inspector');
  const physical = await workbench.webview('GRASS Memory Inspector');
  await chooseOption(physical, 'space', 'physical');
  await physical.locator('#address input').fill(PHYSICAL_ADDRESS);
  await physical.locator('#go').click();
  const physicalRow = await waitUntil('physical bytes in the second inspector', async () => {
    const text = await physical.locator(`.row[data-address="${PHYSICAL_ADDRESS}"] .hex`).innerText({ timeout: 1000 });
    return /^[0-9a-f\s]+$/.test(text.trim()) ? text : undefined;
  }, 20_000);
  assert.equal(rowBytes(physicalRow).toString('hex'), guest.readPhysical(BigInt(PHYSICAL_ADDRESS), 16).toString('hex'));
  await shoot(`memory-inspector-physical-${THEMES[0].kind}`, page.locator('.part.editor'));
  // Past the guest's RAM (its memory map ends below 4 GiB: 512 MiB guest): each page's first row
  // says why it cannot be read, cause first, in the theme's error colour, within the rows' width.
  await physical.locator('#address input').fill(BEYOND_RAM);
  await physical.locator('#go').click();
  const pageError = physical.locator(`.row[data-address="${BEYOND_RAM}"] .ann`);
  const errorText = await waitUntil('the unreadable page\'s reason', async () => {
    const text = await pageError.innerText({ timeout: 1000 }).catch(() => '');
    return /outside the memory map/.test(text) ? text : undefined;
  }, 20_000);
  assert.match(errorText, /^address 0x[0-9a-f]+ is outside the memory map/, 'the cause is not first');
  // A probe element coloured by the theme variable gives the colour it stands for.
  const colours = await pageError.evaluate((el) => {
    const probe = el.ownerDocument.createElement('span');
    probe.style.color = 'var(--vscode-errorForeground)';
    el.append(probe);
    const view = el.ownerDocument.defaultView;
    const expected = view.getComputedStyle(probe).color;
    probe.remove();
    return { shown: view.getComputedStyle(el).color, expected };
  });
  assert.equal(colours.shown, colours.expected, 'the page error is not in the theme\'s error colour');
  const widths = await physical.locator(`.row[data-address="${BEYOND_RAM}"]`).evaluate((row) => {
    const rows = row.ownerDocument.getElementById('rows')!;
    const ann = row.querySelector('.ann')!;
    return { right: ann.getBoundingClientRect().right - rows.getBoundingClientRect().left, panel: rows.clientWidth, cut: ann.scrollWidth > ann.clientWidth, title: ann.title };
  });
  assert.ok(widths.right <= widths.panel, `the error row ends ${widths.right} px in, the panel is ${widths.panel} px wide`);
  assert.ok(!widths.cut || widths.title.startsWith('address '), 'a cut error has the whole of it in its tooltip');
  await shoot(`memory-inspector-page-error-${THEMES[0].kind}`, page.locator('.part.editor'));
  // A failed Go leaves nothing of the last address on screen: no rows, the error in the status line.
  await physical.locator('#address input').fill('init_task');
  await physical.locator('#go').click();
  await webviewText(physical, '#status', /^Cannot go to init_task: in physical memory only a number is an address/);
  await waitUntil('the rows cleared', async () => (await physical.locator('.row').count()) === 0);
  // The same panel on the running kernel's jiffies with auto-refresh on: jiffies advances, so
  // bytes of it are marked as changed.
  await chooseOption(physical, 'space', 'kernel');
  await physical.locator('#address input').fill('jiffies');
  await physical.locator('#go').click();
  const jiffies = BigInt(/^jiffies = (0x[0-9a-f]+)/.exec(await webviewText(physical, '#selection', /^jiffies = 0x/))![1]);
  await chooseOption(physical, 'auto-refresh', 'every 1 s');
  await waitUntil('a changed byte of jiffies', async () => {
    const cells = physical.locator('.byte.changed');
    for (let i = 0, n = Math.min(await cells.count(), 64); i < n; i++) {
      const at = BigInt((await cells.nth(i).getAttribute('data-address', { timeout: 1000 })) ?? '-1');
      if (at >= jiffies && at < jiffies + 8n) return true;
    }
    return false;
  }, 20_000);
  await page.locator('.tab:has-text("Memory: init_task")').click();

  // Decode as struct…: the struct type picked as a person would, by typing its name.
  await inspector.locator('#decode').click();
  await workbench.pick('task_struct', 'task_struct');
  // The panel named by the symbol the object is at, not by its address.
  const decoder = await workbench.webview('Struct: init_task (struct task_struct)');
  assert.equal(await page.locator('.tab.active .label-name').innerText(), 'Struct: init_task (struct task_struct)');
  const commRow = await webviewText(decoder, '.node[data-path="comm"] .value', /^= ".*"$/);
  // init_idle() names the boot CPU's idle task swapper/0; the agent's process list agrees.
  const idle = (await grassJson<{ tasks: { pid: number; comm: string }[] }>(['ps', '--idle', '--target', agent.target, '--key-file', agent.keyFile])).tasks.find((t) => t.pid === 0);
  assert.equal(commRow, `= ${JSON.stringify(idle?.comm)}`);
  assert.equal(commRow, '= "swapper/0"');
  // Each member's offset and size (crash's struct -o) as pahole reads the guest kernel's BTF.
  const pahole = execFileSync('pahole', ['-F', 'btf', '-C', 'task_struct', guest.kernelDir.btf], { encoding: 'utf8' });
  const [, commOffset, commSize] = /\bcomm\[16\];\s*\/\*\s*(\d+)\s+(\d+)/.exec(pahole)!.map(Number);
  assert.equal(await decoder.locator('.node[data-path="comm"] .offset').innerText(), `+0x${commOffset.toString(16)}`);
  assert.equal(await decoder.locator('.node[data-path="comm"] .size').innerText(), `${commSize} B`);
  // Task flags: this kernel's BTF has no PF_* enum (pahole/bpftool list none), and the row says so.
  assert.match(await decoder.locator('.node[data-path="flags"] .note').innerText(), /BTF has no enum of PF_\* bits/);

  // init_task.tasks → the next task in the list (container_of), as the guest's own ps shows it.
  await decoder.locator('.node[data-path="tasks"]').hover();
  await decoder.locator('.node[data-path="tasks"] .follow-list').click();
  await workbench.pick('struct task_struct via tasks');
  const nextPid = Number(/^= (\d+)/.exec(await webviewText(decoder, '.node[data-path="tasks.entry.pid"] .value', /^= \d+/))![1]);
  const nextComm = (await webviewText(decoder, '.node[data-path="tasks.entry.comm"] .value', /^= "/)).slice(2);
  const procComm = (await guest.exec(`cat /proc/${nextPid}/comm`)).trim();
  assert.ok(sameComm(JSON.parse(nextComm) as string, procComm), `task ${nextPid}: decoded comm ${nextComm}, the guest says ${procComm}`);
  // Its __state named bit by bit from the kernel's own table: the state the guest's /proc gives it.
  const procState = /^\d+ \(.*\) (\S)/.exec(await guest.exec(`cat /proc/${nextPid}/stat`))![1];
  const stateBits = await webviewText(decoder, '.node[data-path="tasks.entry.__state"] .bits', /^\[/);
  assert.ok(stateBits.startsWith(`[${procState} (`), `task ${nextPid}: __state shown as ${stateBits}, the guest's /proc says ${procState}`);

  // The whole of init_task.tasks walked into a table: one row per process (list_for_each_entry
  // leaves out the head's own task), each pid and comm as the guest's /proc has them.
  await decoder.locator('.node[data-path="tasks"]').hover();
  await decoder.locator('.node[data-path="tasks"] .walk-list').click();
  await workbench.pick('struct task_struct via tasks');
  const table = decoder.locator('table.list-table[data-path="tasks.table"]');
  await waitUntil('the list table', async () => (await table.count()) > 0, 30_000);
  assert.deepEqual(await table.locator('thead th').allInnerTexts(), ['#', 'address', 'pid', 'tgid', 'comm', '__state']);
  const tableRows = (await table.locator('tbody tr').allInnerTexts()).map((r) => r.split('\t'));
  const procPids = (await guest.exec('ls /proc')).split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
  assert.ok(Math.abs(tableRows.length - procPids.length) <= 3, `${tableRows.length} rows, the guest's /proc lists ${procPids.length} processes`);
  for (const pid of [1, 2, holder.holderPid]) {
    const row = tableRows.find((r) => Number(r[2]) === pid);
    assert.ok(row, `pid ${pid} not in the table`);
    assert.ok(sameComm(JSON.parse(row[4]) as string, (await guest.exec(`cat /proc/${pid}/comm`)).trim()), `pid ${pid}: ${row.join(' ')}`);
  }
  assert.match(await decoder.locator('.node[data-path="tasks"] ~ ul .list-note').innerText(), new RegExp(`^${tableRows.length} entries of struct task_struct via tasks$`));
  await shoot(`struct-decoder-list-table-${THEMES[0].kind}`, page.locator('.part.editor'));

  for (const theme of THEMES) {
    if (theme !== THEMES[0]) {
      await workbench.command('Preferences: Color Theme');
      await workbench.pick(theme.label, theme.label);
    }
    await waitUntil(`the ${theme.kind} theme`, async () => (await page.locator(`.monaco-workbench.${theme.workbenchClass}`).count()) > 0);
    for (const [frame, name] of [[decoder, 'struct-decoder'], [inspector, 'memory-inspector']] as const) {
      await waitUntil(`the ${name} page in the ${theme.kind} theme`, async () => (await frame.locator(`body.${theme.webviewClass}`).count()) > 0);
    }
    // The text shown is the same in either theme.
    assert.equal(await decoder.locator('.node[data-path="comm"] .value').innerText(), '= "swapper/0"');
    await shoot(`struct-decoder-${theme.kind}`, page.locator('.part.editor'));
    await page.locator('.tab:has-text("Memory: init_task")').click();
    assert.equal(rowBytes(await firstRow.innerText()).toString('hex'), truth.hex);
    await shoot(`memory-inspector-${theme.kind}`, page.locator('.part.editor'));
    await page.locator('.tab:has-text("Struct:")').click();
    if (theme !== THEMES[0]) await shoot(`processes-${theme.kind}`, page.locator('.part.sidebar'));
  }

  // A reload (a fresh extension host): nobody connects; the extension re-attaches to the session
  // the monitor still holds (heartbeat in the status bar, the tree as the guest lists it), and
  // VS Code restores the panels, which show what they showed.
  // Once VS Code has stored both panels' titles (the browser's state is written now and then).
  await workbench.reload(['Struct: init_task (struct task_struct)', 'Memory: init_task']);
  await waitUntil(`${TARGET} in the Targets view after the reload`, async () => (await targets.allInnerTexts()).some((t) => t.endsWith(` · ${TARGET}`)), 60_000);
  await waitUntil('the heartbeat in the status bar after the reload', async () => (await page.locator('.statusbar-item').allInnerTexts()).some((t) => t.includes(`${TARGET}:`) && /µs/.test(t)), 60_000);
  await waitUntil('the first processes in the tree after the reload', async () => (await rows.count()) > 0, 30_000);
  await workbench.command('GRASS: Filter Processes…');
  await workbench.answer('filter processes', String(holder.holderPid));
  const reattachedRow = await waitUntil(`pid ${holder.holderPid} in the Processes view after the reload`, async () => {
    const texts = await rows.allInnerTexts();
    return texts.find((t) => t.startsWith(`${holder.holderPid} `));
  }, 30_000);
  const threadsNow = (await guest.exec(`ls /proc/${holder.holderPid}/task`)).split(/\s+/).filter(Boolean).length;
  assert.ok(reattachedRow.startsWith(`${holder.holderPid} ${comm}`), reattachedRow);
  assert.match(reattachedRow, new RegExp(`· ${threadsNow} threads$`));
  const restoredDecoder = await workbench.webview('Struct: init_task (struct task_struct)', 60_000);
  assert.equal(await webviewText(restoredDecoder, '.node[data-path="comm"] .value', /^= "/, 30_000), '= "swapper/0"');
  // A restored panel's page loads when its tab is first shown.
  await page.locator('.tab:has-text("Memory: init_task")').click();
  const restoredInspector = await workbench.webview('Memory: init_task (kernel-virtual)', 30_000);
  const restoredRow = await waitUntil('the restored inspector\'s bytes', async () => {
    const text = await restoredInspector.locator(`.row[data-address="${truth.address}"] .hex`).innerText({ timeout: 1000 });
    return /^[0-9a-f\s]+$/.test(text.trim()) ? text : undefined;
  }, 30_000);
  assert.equal(rowBytes(restoredRow).toString('hex'), truth.hex);
  await shoot('memory-inspector-restored-light', page.locator('.part.editor'));
}
