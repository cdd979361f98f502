// Targets as the user configures them (`grass.targets`) and their addresses (DESIGN §6).
// No VS Code dependency: the CLI and unit tests use this too.

export const DEFAULT_RDMA_PORT = 7471;

export type TargetAddress =
  | { kind: 'shm'; path: string }
  | { kind: 'rdma'; host: string; port: number }
  | { kind: 'vmcore'; path: string }
  | { kind: 'qemu-ram'; path: string; memoryMap?: string };

export interface TargetOptions {
  heartbeatIntervalMs: number;
  requestTimeoutMs: number;
}

export interface TargetConfig {
  name: string;
  /** The address as written, e.g. `rdma://10.0.0.2:7471`. */
  address: string;
  parsed: TargetAddress;
  options: TargetOptions;
}

export const DEFAULT_TARGET_OPTIONS: TargetOptions = { heartbeatIntervalMs: 1000, requestTimeoutMs: 2000 };

export class TargetConfigError extends Error {
  override name = 'TargetConfigError';
}

/** Parses a target address: `shm:<path>`, `rdma://<host>[:<port>]` (IPv6 as `[addr]`),
 * `vmcore:<path>`, `qemu-ram:<path>[?map=<memory-map.json>]`. */
export function parseTargetAddress(address: string): TargetAddress {
  const fail = (why: string): never => {
    throw new TargetConfigError(`target address '${address}': ${why}`);
  };
  const scheme = /^([a-z-]+):/.exec(address)?.[1];
  const rest = scheme === undefined ? '' : address.slice(scheme.length + 1);
  switch (scheme) {
    case 'shm':
    case 'vmcore':
      if (rest === '') fail('the path is missing');
      return { kind: scheme, path: rest };
    case 'qemu-ram': {
      const query = rest.indexOf('?');
      const path = query < 0 ? rest : rest.slice(0, query);
      if (path === '') fail('the path is missing');
      if (query < 0) return { kind: 'qemu-ram', path };
      const params = new URLSearchParams(rest.slice(query + 1));
      const unknown = [...params.keys()].filter((k) => k !== 'map');
      if (unknown.length > 0) fail(`unknown parameter '${unknown[0]}' (only 'map' is known)`);
      const map = params.get('map');
      if (!map) fail("'map=' needs a path to a memory-map JSON file");
      return { kind: 'qemu-ram', path, memoryMap: map ?? undefined };
    }
    case 'rdma': {
      const m = /^\/\/(?:\[([0-9A-Fa-f:.]+)\]|([^\s/:[\]]+))(?::(\d{1,5}))?\/?$/.exec(rest);
      if (!m) return fail('expected rdma://<host>[:<port>] with an IPv6 host in brackets');
      const port = m[3] === undefined ? DEFAULT_RDMA_PORT : Number(m[3]);
      if (port < 1 || port > 65535) fail(`port ${port} is out of range 1-65535`);
      return { kind: 'rdma', host: m[1] ?? m[2], port };
    }
    default:
      return fail('unknown scheme; expected shm:, rdma://, vmcore: or qemu-ram:');
  }
}

/** Checks the `grass.targets` setting; reports the first entry that is wrong, by index and name. */
export function parseTargetsSetting(value: unknown): TargetConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TargetConfigError('grass.targets must be a list of {name, address}');
  const seen = new Set<string>();
  return value.map((entry: unknown, i) => {
    const where = `grass.targets[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new TargetConfigError(`${where} must be an object with name and address`);
    const { name, address, options } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || name.trim() === '') throw new TargetConfigError(`${where}: 'name' must be a non-empty string`);
    if (seen.has(name)) throw new TargetConfigError(`${where}: the name '${name}' is used twice`);
    seen.add(name);
    if (typeof address !== 'string') throw new TargetConfigError(`${where} ('${name}'): 'address' must be a string`);
    let parsed: TargetAddress;
    try {
      parsed = parseTargetAddress(address);
    } catch (err) {
      throw new TargetConfigError(`${where} ('${name}'): ${(err as Error).message}`);
    }
    return { name, address, parsed, options: parseOptions(options, `${where} ('${name}')`) };
  });
}

function parseOptions(value: unknown, where: string): TargetOptions {
  if (value === undefined) return { ...DEFAULT_TARGET_OPTIONS };
  if (typeof value !== 'object' || value === null) throw new TargetConfigError(`${where}: 'options' must be an object`);
  const options = { ...DEFAULT_TARGET_OPTIONS };
  for (const [key, v] of Object.entries(value)) {
    if (!(key in options)) throw new TargetConfigError(`${where}: unknown option '${key}'`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TargetConfigError(`${where}: option '${key}' must be a positive integer (ms)`);
    options[key as keyof TargetOptions] = v;
  }
  return options;
}
