// `grass monitor --metrics-listen HOST:PORT`: the monitor's view of every target it holds, served
// at /metrics in Prometheus's text format (prom-client, docs/dependencies.md), so that Prometheus
// scrapes a fleet, keeps its history and alerts on it (docs/prometheus/). Every series of a target
// is labelled `target` with its name (the configured name for a targets file's entry, else the
// agent's or the address), never with its key. The values are the monitor's last good data, read
// again at each scrape from the held targets' status; the heartbeat histogram is fed by the sweeps.
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TargetState, TargetStatus } from './wire';

/** The state label of grass_target_state, in the words; one series per state, 1 for the current one. */
export const STATE_LABELS: Record<TargetState, string> = {
  up: 'alive',
  'monitor-dead': 'monitor-not-answering',
  'gpu-nic-dead': 'transport-dead',
};

const HANG_CLASSES = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6'] as const;

/** Heartbeat round trips run from ~25 µs (shm, an agent spinning) to the request timeout. */
const HEARTBEAT_BUCKETS = [25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5];
const SWEEP_BUCKETS = [1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10];

/** prom-client default metrics whose names break Prometheus's conventions (checked by promtool). */
const NONCONFORMING_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** What the metrics read from the relay at each scrape. */
export interface MetricsSource {
  targets(): TargetStatus[];
  /** The targets file's entries: held, and refused as invalid; undefined without --targets-file. */
  targetsFile(): { held: number; invalid: number } | undefined;
}

/** HOST:PORT (IPv6 as [addr]:PORT; PORT 0 picks a free one). */
export function parseListenAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--metrics-listen ${value}: expected HOST:PORT (IPv6 as [ADDR]:PORT), e.g. 127.0.0.1:9471`);
  return { host: m[1] ?? m[2], port };
}

export class RelayMetrics {
  readonly registry = new Registry();
  private readonly heartbeatSeconds: Histogram<'target'>;
  private readonly heartbeatFailures: Counter<'target'>;
  private readonly sweepSeconds: Histogram;
  private readonly sweepTargets: Gauge;
  private readonly fileReloads: Counter<'result'>;
  private readonly liveness: Counter<'target'>;
  private readonly refresh: (() => void)[] = [];
  private server?: http.Server;

  constructor(private readonly source: MetricsSource) {
    const r = [this.registry];
    // The monitor's own process: CPU, memory, file descriptors, event loop lag, heap (prom-client's
    // standard process_* and nodejs_* names, as every Node service exports them).
    collectDefaultMetrics({ register: this.registry });
    // Three of them are gauges named _total, which `promtool check metrics` rejects (a _total
    // name is a counter's); the handle and request counts they give are not the fleet's concern.
    for (const name of NONCONFORMING_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    this.heartbeatSeconds = new Histogram({ name: 'grass_target_heartbeat_round_trip_seconds', help: "Round trip of the monitor's heartbeat requests to the target's agent (answered ones).", labelNames: ['target'], buckets: HEARTBEAT_BUCKETS, registers: r });
    this.heartbeatFailures = new Counter({ name: 'grass_target_heartbeat_failures_total', help: 'Heartbeats that got no answer (timeout, transport error, refusal).', labelNames: ['target'], registers: r });
    this.sweepSeconds = new Histogram({ name: 'grass_monitor_sweep_duration_seconds', help: 'From the start of a heartbeat sweep (one heartbeat to every due target, all at once) until every one of them settled.', buckets: SWEEP_BUCKETS, registers: r });
    this.sweepTargets = new Gauge({ name: 'grass_monitor_sweep_targets', help: 'Targets the last heartbeat sweep sent a heartbeat to.', registers: r });
    this.fileReloads = new Counter({ name: 'grass_monitor_targets_file_reloads_total', help: 'Reads of the targets file (at start and on every change), by result: ok, or error when the file could not be read or parsed (the targets held before are kept).', labelNames: ['result'], registers: r });
    this.liveness = new Counter({ name: 'grass_target_liveness_passes_total', help: "The agent's monitor-loop pass count (its liveness counter), read with the last good heartbeat; it stops when the agent's monitor loop stops.", labelNames: ['target'], registers: r });
    this.refresh.push(() => {
      // A counter's value is the agent's own count: set, not added to.
      this.liveness.reset();
      for (const t of this.source.targets()) if (t.last.livenessCounter !== undefined) this.liveness.inc({ target: t.name }, Number(t.last.livenessCounter));
    });

    const gauge = <L extends string>(name: string, help: string, labelNames: L[], values: (t: TargetStatus, set: (labels: Record<L, string>, v: number) => void) => void): void => {
      const g = new Gauge<string>({ name, help, labelNames: ['target', ...labelNames], registers: r });
      // Reset and refilled from the source at each scrape: a target no longer held leaves no series.
      this.refresh.push(() => {
        g.reset();
        for (const t of this.source.targets()) values(t, (labels, v) => g.set({ target: t.name, ...labels }, v));
      });
    };
    const windowGauge = (name: string, help: string, pick: (w: NonNullable<TargetStatus['last']['window']>) => number): void =>
      gauge(name, `${help} (SHFH metric of the latest 1 s metrics window the agent published).`, [], (t, set) => {
        if (t.last.window) set({}, pick(t.last.window));
      });

    gauge('grass_target_info', 'A held target: its address, how the session was made, its kernel release (1 for every held target).', ['address', 'direction', 'release'], (t, set) =>
      set({ address: t.address, direction: t.direction, release: t.last.release ?? '' }, 1));
    gauge('grass_target_state', "The target's state as the monitor sees it: alive (heartbeats answered), monitor-not-answering (no reply while the transport works: the agent's monitor loop stopped), transport-dead (transport error or the agent is gone). 1 for the current state.", ['state'], (t, set) => {
      for (const [state, label] of Object.entries(STATE_LABELS)) set({ state: label }, t.state === state ? 1 : 0);
    });
    gauge('grass_target_last_heartbeat_timestamp_seconds', 'When the last heartbeat the target answered came back (Unix time).', [], (t, set) => {
      if (t.last.at) set({}, Date.parse(t.last.at) / 1000);
    });
    gauge('grass_target_session_start_timestamp_seconds', 'When the session to the target was set up (Unix time).', [], (t, set) => set({}, Date.parse(t.since) / 1000));
    gauge('grass_target_processes', 'Processes (thread-group leaders) the agent counted in the target kernel.', [], (t, set) => {
      if (t.last.processes !== undefined) set({}, t.last.processes);
    });
    gauge('grass_target_last_observation_timestamp_seconds', "When the monitor last read the target's detections, metrics window and kernel log (Unix time).", [], (t, set) => {
      if (t.last.observedAt) set({}, Date.parse(t.last.observedAt) / 1000);
    });
    gauge('grass_target_detection_active', "1 while the agent's detector holds a detection (the hang detector: one series per class F1-F6, 1 on the class detected), 0 otherwise; read from the agent's background area, with no request.", ['detector', 'class'], (t, set) => {
      for (const d of t.last.detections ?? []) {
        if (d.detector === 'hang') for (const c of HANG_CLASSES) set({ detector: d.detector, class: c }, d.active && d.hangClass === c ? 1 : 0);
        else set({ detector: d.detector, class: '' }, d.active ? 1 : 0);
      }
    });
    gauge('grass_target_detection_culprit_info', "The first culprit of each active detection (one series per active detector): the task's pid, comm and role.", ['detector', 'pid', 'comm', 'role'], (t, set) => {
      for (const d of t.last.detections ?? []) {
        if (d.active && d.culprit) set({ detector: d.detector, pid: String(d.culprit.pid), comm: d.culprit.comm, role: d.culprit.role }, 1);
      }
    });
    gauge('grass_target_kernel_panicked', 'Whether the target kernel\'s log (its printk ring, read from its memory) holds a "Kernel panic - not syncing" report: 1 panicked, 0 not.', [], (t, set) => {
      if (t.last.kernelPanicked !== undefined) set({}, t.last.kernelPanicked ? 1 : 0);
    });
    windowGauge('grass_target_cpu_user_ratio', 'Share of CPU time in user space (user + nice), averaged over CPUs, 0-1 (usr)', (w) => w.usr / 100);
    windowGauge('grass_target_cpu_system_ratio', 'Share of CPU time in the kernel (system + irq + softirq), averaged over CPUs, 0-1 (sys)', (w) => w.sys / 100);
    windowGauge('grass_target_cpu_iowait_ratio', 'Share of CPU time idle with I/O outstanding, averaged over CPUs, 0-1 (iowait)', (w) => w.iowait / 100);
    windowGauge('grass_target_cpu_idle_ratio', 'Share of CPU time idle, averaged over CPUs, 0-1', (w) => w.idle / 100);
    windowGauge('grass_target_context_switches_per_second', 'Context switches per second, all CPUs (cs)', (w) => w.contextSwitchesPerSecond);
    windowGauge('grass_target_runnable_tasks', 'Runnable tasks at the window\'s end, sum of the run queues\' nr_running (run)', (w) => w.run);
    windowGauge('grass_target_blocked_tasks', 'Tasks in I/O wait at the window\'s end, sum of the run queues\' nr_iowait (blk)', (w) => w.blk);
    windowGauge('grass_target_swap_out_pages_per_second', 'Pages swapped out per second (pswpout)', (w) => w.pswpoutPerSecond);
    windowGauge('grass_target_swap_in_pages_per_second', 'Pages swapped in per second (pswpin)', (w) => w.pswpinPerSecond);
    windowGauge('grass_target_memory_free_bytes', 'Free RAM, to the MiB (memfree)', (w) => w.memFreeBytes);
    windowGauge('grass_target_disk_utilization_ratio', 'Busy share of the busiest whole disk, io_ticks over the window\'s jiffies, 0-1 (util)', (w) => w.util / 100);
    windowGauge('grass_target_metrics_window_seconds', 'Length of that window on the agent\'s clock', (w) => w.windowSeconds);
    const fileEntries = new Gauge({ name: 'grass_monitor_targets_file_entries', help: 'Entries of the targets file by result: held, or invalid (reported on stderr and left out; the others are held).', labelNames: ['result'], registers: r });
    this.refresh.push(() => {
      fileEntries.reset();
      const f = this.source.targetsFile();
      if (!f) return;
      fileEntries.set({ result: 'held' }, f.held);
      fileEntries.set({ result: 'invalid' }, f.invalid);
    });
    const held = new Gauge({ name: 'grass_monitor_targets', help: 'Targets the monitor holds.', registers: r });
    this.refresh.push(() => held.set(this.source.targets().length));
  }

  heartbeat(target: string, seconds: number): void {
    this.heartbeatSeconds.observe({ target }, seconds);
  }

  heartbeatFailed(target: string): void {
    this.heartbeatFailures.inc({ target });
  }

  sweep(seconds: number, targets: number): void {
    this.sweepSeconds.observe(seconds);
    this.sweepTargets.set(targets);
  }

  targetsFileRead(ok: boolean): void {
    this.fileReloads.inc({ result: ok ? 'ok' : 'error' });
  }

  /** A target no longer held: its histogram and counters go (the gauges follow the held list). */
  forget(target: string): void {
    this.heartbeatSeconds.remove({ target });
    this.heartbeatFailures.remove({ target });
  }

  /** The exposition, refreshed from the source. */
  async text(): Promise<string> {
    for (const f of this.refresh) f();
    return this.registry.metrics();
  }

  /** Serves GET /metrics on host:port; resolves to the address it listens on. */
  async listen(host: string, port: number): Promise<string> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if ((req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('grass monitor: metrics are at /metrics\n');
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`grass monitor: ${err.message}\n`),
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`--metrics-listen ${host}:${port}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    if (!a || typeof a === 'string') return `${host}:${port}`;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
