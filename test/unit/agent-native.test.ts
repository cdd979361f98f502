// The agent's native unit tests (gpu/test: SHA-256/HMAC and CRC32 against OpenSSL and zlib,
// memory sources, page walks, kallsyms decoding, the process-list plugin, the protocol server) built and run by
// `make -C gpu test`; and the monitor code compiled for the GPU by nvcc where it is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const gpuDir = path.resolve(__dirname, '../../gpu');

test('gpu native unit tests (make -C gpu test)', () => {
  const run = spawnSync('make', ['-s', '-C', gpuDir, 'test'], { encoding: 'utf8', timeout: 600_000 });
  const output = `${run.stdout}${run.stderr}`;
  assert.equal(run.status, 0, `make -C gpu test failed:\n${output}`);
  // Every suite reports its counts; none may be missing or report failures.
  for (const suite of ['test_crypto', 'test_memory_source', 'test_translate', 'test_kallsyms', 'test_process_list', 'test_monitor']) {
    assert.match(output, new RegExp(`${suite}: [1-9][0-9]* checks, 0 failed`), `${suite} did not report:\n${output}`);
  }
});

/** nvcc on PATH or where CUDA installs it; undefined if this machine has none. */
function findNvcc(): string | undefined {
  const candidates = [...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'nvcc')), '/usr/local/bin/nvcc', '/usr/local/cuda/bin/nvcc'];
  return candidates.find((c) => existsSync(c));
}

const nvcc = findNvcc();
test('the monitor code compiles for the GPU (make -C gpu cuda-check, sm_90)', { skip: nvcc ? false : 'no nvcc on this machine' }, () => {
  const run = spawnSync('make', ['-s', '-C', gpuDir, 'cuda-check', `NVCC=${nvcc}`], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(run.status, 0, `make -C gpu cuda-check failed:\n${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /monitor code compiles for sm_90/);
});
