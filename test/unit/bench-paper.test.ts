// The benchmark's "against the paper" table (bench/paper.ts): which figures it quotes, unit
// conversion, differences, and where detection latencies come from (this run, the newest saved
// run that has them, or "not measured").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Figure } from '../../bench/lib';
import { paperRows, paperTable } from '../../bench/paper';

function figure(id: string, unit: string, values: number[], label = id): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  return { id, label, unit, values, min: sorted[0], median: sorted[sorted.length >> 1] };
}

function withResultsDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-paper-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('heartbeat and list-minus-count rows quote this run with ratios to the paper', () => {
  withResultsDir((dir) => {
    const rows = paperRows([
      figure('agent.heartbeat', 'µs', [15, 30, 45]),
      figure('agent.process-count', 'µs', [10, 20, 30], 'process count (155 processes)'),
      figure('agent.process-list', 'µs', [40, 74, 90], 'process list (155 processes)'),
      figure('gpu-device.h100.heartbeat', 'µs', [60, 66]),
      figure('growth.process-count-1000', 'µs', [100, 100, 100]),
      figure('growth.process-list-1000', 'µs', [400, 500, 600], 'process list through the agent (1002 processes)'),
    ], dir);
    const shm = rows.find((r) => r.what === 'heartbeat round trip, shm')!;
    assert.deepEqual({ median: shm.ours!.median, min: shm.ours!.min }, { median: 30, min: 15 });
    assert.equal(rows.find((r) => r.what === 'heartbeat round trip, RDMA')!.missing, 'no rdma-rxe.heartbeat figure in this run');
    assert.equal(rows.find((r) => r.what === 'heartbeat round trip, GPU (H100)')!.ours!.median, 66);
    const diff = rows.find((r) => r.what.startsWith('process list minus process count (155'))!;
    assert.deepEqual({ median: diff.ours!.median, min: diff.ours!.min }, { median: 54, min: 30 });
    assert.equal(rows.find((r) => r.what === 'process list minus process count (1002 processes)')!.ours!.median, 400);
    const table = paperTable(rows);
    assert.match(table, /\| heartbeat round trip, shm \| 75 µs \(48 \+ 27; ping 95 µs\) \| 30\.0 µs \(15\.0 µs\) \| 0\.40× \|/);
    assert.match(table, /\| detection latency, memory leak \| 68\.6 s \| not measured \|/);
  });
});

test('detection latencies: this run first, converted to seconds', () => {
  withResultsDir((dir) => {
    const rows = paperRows([figure('detect-latency.f1', 'ms', [2000, 2500, 3000]), figure('detect-latency.memory-leak-seconds', 's', [70])], dir);
    const f1 = rows.find((r) => r.what === 'detection latency, F1 hang')!;
    assert.deepEqual({ median: f1.ours!.median, min: f1.ours!.min }, { median: 2.5, min: 2 });
    assert.match(f1.ours!.from, /\(this run\)$/);
    assert.equal(rows.find((r) => r.what === 'detection latency, memory leak')!.ours!.median, 70);
    assert.equal(rows.find((r) => r.what === 'detection latency, F2 hang')!.missing, 'not measured');
  });
});

test('detection latencies absent from the run come from the newest saved run that has them, named', () => {
  withResultsDir((dir) => {
    mkdirSync(path.join(dir, 'local'));
    const saved = (date: string, revision: string, values: number[]) => ({ date, revision, figures: [figure('detect-latency.f4', 'µs', values)] });
    writeFileSync(path.join(dir, 'local', 'a.json'), JSON.stringify(saved('2026-11-26T10:00:00.000Z', 'old', [9e6])));
    writeFileSync(path.join(dir, 'local', 'b.json'), JSON.stringify(saved('2026-11-26T11:00:00.000Z', 'new', [3e6])));
    writeFileSync(path.join(dir, 'local', 'c.json'), JSON.stringify({ date: '2026-11-26T12:00:00.000Z', revision: 'none', figures: [] }));
    writeFileSync(path.join(dir, 'local', 'partial.json'), '{"date":');
    const f4 = paperRows([], dir).find((r) => r.what === 'detection latency, F4 hang')!;
    assert.equal(f4.ours!.median, 3);
    assert.match(f4.ours!.from, /saved run new of 2026-11-26T11:00:00\.000Z/);
  });
});

test('a detection figure that is not a time is an error naming it', () => {
  withResultsDir((dir) => {
    assert.throws(() => paperRows([figure('detect-latency.f2', 'MB/s', [1])], dir), /detect-latency\.f2 has unit MB\/s/);
  });
});
