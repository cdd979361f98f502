// Worker-thread entry of the battery: one BatteryRequest in, its StepOutcome[] out. The fuzzer
// terminates the worker when a mutant passes its deadline (a synchronous loop never yields).
import { parentPort } from 'node:worker_threads';
import { Battery, type BatteryRequest, type StepOutcome } from './battery';

const battery = new Battery();
parentPort!.on('message', (req: BatteryRequest | 'close') => {
  if (req === 'close') {
    void battery.close().then(() => parentPort!.postMessage('closed'));
    return;
  }
  battery.run(req).then(
    (steps: StepOutcome[]) => parentPort!.postMessage(steps),
    (err: unknown) => parentPort!.postMessage([{ step: 'battery', status: 'crash', error: err instanceof Error ? err.stack ?? err.message : String(err), ms: 0 }]),
  );
});
