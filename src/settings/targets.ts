// Targets as the user configures them in the `grass.targets` setting: a name, an address
// (DESIGN §6, parsed by src/rdma/address.ts) and options. No VS Code dependency, so unit tests
// run it directly.
import { parseTargetAddress, type TargetAddress } from '../rdma/address';

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
