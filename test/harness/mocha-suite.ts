// Runs the mocha test files of one extension-host suite (the *.test.js bundles beside the
// suite's index.js) inside the VS Code extension host, and prints the line the test scripts
// count: `grass-suite-result: N passed, N failed`. A failed test makes run() reject, which
// VS Code reports as exit code 1.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export const RESULT_PREFIX = 'grass-suite-result:';

export function runMochaSuite(suiteDir: string, timeoutMs = 20_000): Promise<void> {
  // GRASS_EXTENSION_GREP runs only the tests whose full titles match (the suites' hooks still run).
  const grep = process.env.GRASS_EXTENSION_GREP;
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: timeoutMs, reporter: 'spec', ...(grep ? { grep } : {}) });
  const files = readdirSync(suiteDir).filter((f) => f.endsWith('.test.js')).sort();
  if (files.length === 0) return Promise.reject(new Error(`no *.test.js files in ${suiteDir}: was the suite built?`));
  for (const f of files) mocha.addFile(path.join(suiteDir, f));
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        const passed = runner.stats?.passes ?? 0;
        const failed = runner.stats?.failures ?? failures;
        console.log(`${RESULT_PREFIX} ${passed} passed, ${failed} failed`);
        if (failed > 0) reject(new Error(`${failed} extension test(s) failed`));
        else resolve();
      });
    } catch (err) {
      console.log(`${RESULT_PREFIX} 0 passed, 1 failed`);
      reject(err);
    }
  });
}
