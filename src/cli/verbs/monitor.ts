// grass monitor: the long-lived process holding RDMA sessions to targets (DESIGN §3.4,
// docs/rdma.md); `grass monitor status` lists what it holds, each target's state and its last
// good data.
import { parseArgs } from 'node:util';
import type { CliCommand } from '../command';
import { readKeyFile } from '../../rdma/key';
import { relayTargets, stopRelay } from '../../relay/remote';
import { RelayServer } from '../../relay/server';
import { defaultRelaySocket } from '../../relay/wire';
import { printJson } from './target-flags';

const usage = `usage: grass monitor [--listen rdma://HOST[:PORT]] [--connect rdma://AGENT[:PORT]|shm:PATH]...
                     [--targets-file F] [--metrics-listen HOST:PORT]
                     [--socket PATH] [--key-file F] [--poll-ms N] [--timeout-ms N] [--observe-ms N]
       grass monitor status [--socket PATH] [--json]
       grass monitor stop [--socket PATH]

Holds RDMA sessions to targets: agents connect to --listen at their start (the paper's
direction), or the monitor connects to agents listening at --connect (again after a loss); an
agent's shared memory on this host (shm:PATH) is held the same way; clients add targets with
a hold request (the extension does, with the target's key), or a targets file names them. Every
poll period one heartbeat goes to every held target at once (a sweep); now and then each
target's detections, metrics window, process count and kernel log are read too. The last good
data is kept; failures are classified:
  monitor-dead   no reply while RDMA works (the target's monitor loop stopped)
  gpu-nic-dead   RDMA error or dropped connection (the agent's GPU/NIC or the network)
The CLI and the extension attach over the local socket: --target rdma://NAME|HOST goes through
a running monitor. Runs until SIGINT/SIGTERM.

  --socket PATH      local socket (default $GRASS_MONITOR_SOCKET, else ${defaultRelaySocket()})
  --key-file F       32-byte HMAC key of the targets (default $GRASS_KEY_FILE); optional with
                     --targets-file alone when every entry names its keyFile
  --targets-file F   targets to hold, JSON (or YAML: .yaml/.yml): a list of {"name", "address",
                     "keyFile", "options": {"heartbeatIntervalMs", "requestTimeoutMs"}} (the
                     grass.targets setting's shape plus keyFile, relative to F's folder); read
                     again when it changes; a bad entry is reported and the others are held
  --metrics-listen HOST:PORT
                     serve Prometheus's /metrics there (port 0: any free port; the address is
                     printed); every series of a target is labelled target=<its name>
  --poll-ms N        heartbeat sweep period (default 1000)
  --timeout-ms N     heartbeat and RDMA operation timeout (default 2000)
  --observe-ms N     how often each target's detections, metrics window, process count and
                     kernel log are read (default 5000)
`;

function positiveInt(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`monitor: ${name} must be a positive integer`);
  return n;
}

export const monitorCommand: CliCommand = {
  name: 'monitor',
  summary: 'hold RDMA sessions to targets and serve the CLI and the extension',
  usage,
  async run(argv) {
    if (argv[0] === 'status') {
      const { values } = parseArgs({ args: argv.slice(1), options: { socket: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
      const targets = await relayTargets(values.socket ?? defaultRelaySocket());
      if (values.json) printJson({ targets });
      else if (targets.length === 0) process.stdout.write('no targets\n');
      else {
        for (const t of targets) {
          const last = t.last.at ? `last good ${t.last.at}: ${t.last.release ?? '?'}, ${t.last.processes ?? '?'} processes, heartbeat ${t.last.heartbeatUs?.toFixed(0) ?? '?'} µs` : 'no data yet';
          const active = (t.last.detections ?? []).filter((d) => d.active).map((d) => d.hangClass ?? d.detector);
          const findings = [...(t.last.kernelPanicked ? ['kernel panicked'] : []), ...(active.length ? [`detected: ${active.join(', ')}`] : [])];
          process.stdout.write(`${t.name} ${t.address} ${t.state}${t.failure ? ` — ${t.failure}` : ''}; ${last}${findings.length ? `; ${findings.join('; ')}` : ''}\n`);
        }
      }
      return 0;
    }
    if (argv[0] === 'stop') {
      const { values } = parseArgs({ args: argv.slice(1), options: { socket: { type: 'string' } }, strict: true });
      const socketPath = values.socket ?? defaultRelaySocket();
      process.stdout.write(`stopping the monitor at ${socketPath} (pid ${await stopRelay(socketPath)})\n`);
      return 0;
    }
    const { values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        connect: { type: 'string', multiple: true },
        socket: { type: 'string' },
        'key-file': { type: 'string' },
        'poll-ms': { type: 'string' },
        'timeout-ms': { type: 'string' },
        'observe-ms': { type: 'string' },
        'targets-file': { type: 'string' },
        'metrics-listen': { type: 'string' },
      },
      strict: true,
    });
    const keyFile = values['key-file'] ?? process.env.GRASS_KEY_FILE;
    // Without --key-file only a targets file's entries, each with its own key, can be held.
    if (!keyFile && (!values['targets-file'] || values.listen || values.connect?.length)) {
      throw new Error(`monitor: --key-file F (or GRASS_KEY_FILE) is required${values['targets-file'] ? ' with --listen or --connect' : ''}: heartbeats are signed`);
    }
    const socketPath = values.socket ?? defaultRelaySocket();
    let stopRequested: (why: string) => void = () => undefined;
    const stopped = new Promise<string>((resolve) => {
      stopRequested = resolve;
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
    });
    const monitor = await RelayServer.start({
      socketPath,
      onStopRequest: () => stopRequested('stop request'),
      key: keyFile ? readKeyFile(keyFile) : undefined,
      listen: values.listen,
      connect: values.connect,
      pollMs: positiveInt('--poll-ms', values['poll-ms']),
      timeoutMs: positiveInt('--timeout-ms', values['timeout-ms']),
      observeMs: positiveInt('--observe-ms', values['observe-ms']),
      targetsFile: values['targets-file'],
      metricsListen: values['metrics-listen'],
    });
    process.stderr.write(`grass monitor: serving clients on ${socketPath}\n`);
    if (monitor.metricsAddress) process.stderr.write(`grass monitor: serving metrics on http://${monitor.metricsAddress}/metrics\n`);
    const why = await stopped;
    process.stderr.write(`grass monitor: stopping (${why})\n`);
    await monitor.close();
    return 0;
  },
};
