// `grass monitor --targets-file F`: a fleet's targets in a file, so that no editor is needed to
// name them and a monitor restart loses none. The shape is the `grass.targets` setting's (a list
// of {name, address, options}) plus, per target, the key file its agent was started with. JSON,
// or YAML when the name ends in .yaml/.yml. Each entry is checked on its own: a bad one is
// reported by index and name and the others are held.
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { readKeyFile } from '../rdma/key';
import { parseTargetsSetting, TargetConfigError, type TargetConfig } from '../settings/targets';

export interface FileTarget extends TargetConfig {
  /** The key file as resolved (relative names are relative to the targets file's folder). */
  keyFile?: string;
  key?: Uint8Array;
}

export interface TargetsFileEntryError {
  index: number;
  /** The entry's name when it has a usable one (the monitor keeps a target of that name held). */
  name?: string;
  message: string;
}

export interface TargetsFileContents {
  targets: FileTarget[];
  errors: TargetsFileEntryError[];
}

export class TargetsFileError extends Error {
  override name = 'TargetsFileError';
}

/** At most this many entries: a file that holds more is refused, not half-read. */
export const MAX_FILE_TARGETS = 100_000;

/** The file's text as a value: YAML for .yaml/.yml, JSON otherwise. */
function parseText(file: string, text: string): unknown {
  if (/\.ya?ml$/i.test(file)) {
    try {
      return yaml.load(text, { filename: file, schema: yaml.JSON_SCHEMA });
    } catch (err) {
      throw new TargetsFileError(`targets file ${file}: not YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TargetsFileError(`targets file ${file}: not JSON: ${(err as Error).message}`);
  }
}

/**
 * Reads and checks the targets file. A file that cannot be read or parsed, or is not a list (nor
 * {targets: [...]}), throws TargetsFileError; entries that are wrong come back in `errors`.
 * `defaultKey`: what a target without a keyFile is signed with (the monitor's --key-file).
 */
export function readTargetsFile(file: string, defaultKey: Uint8Array | undefined): TargetsFileContents {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TargetsFileError(`targets file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const value = parseText(file, text);
  // An empty YAML document is no targets, as an empty list.
  const list = value === undefined || value === null ? [] : Array.isArray(value) ? value : (value as { targets?: unknown }).targets;
  if (!Array.isArray(list)) throw new TargetsFileError(`targets file ${file}: expected a list of {name, address[, keyFile, options]} (or {"targets": [...]})`);
  if (list.length > MAX_FILE_TARGETS) throw new TargetsFileError(`targets file ${file}: ${list.length} entries, at most ${MAX_FILE_TARGETS}`);
  const targets: FileTarget[] = [];
  const errors: TargetsFileEntryError[] = [];
  const names = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const raw = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : {};
    const name = typeof raw.name === 'string' && raw.name.trim() !== '' ? raw.name : undefined;
    const fail = (message: string) => errors.push({ index, ...(name !== undefined ? { name } : {}), message: `entry ${index}${name !== undefined ? ` ('${name}')` : ''}: ${message}` });
    try {
      const unknown = Object.keys(raw).filter((k) => !['name', 'address', 'options', 'keyFile'].includes(k));
      if (unknown.length) return fail(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}`);
      // The setting's own checks, one entry at a time (its messages name grass.targets[0]).
      const [config] = parseTargetsSetting([entry]);
      if (names.has(config.name)) return fail(`the name '${config.name}' is used twice`);
      if (config.parsed.kind !== 'shm' && config.parsed.kind !== 'rdma') return fail(`a monitor holds rdma:// and shm: targets, not ${config.address}`);
      let keyFile: string | undefined;
      let key = defaultKey;
      if (raw.keyFile !== undefined) {
        if (typeof raw.keyFile !== 'string' || raw.keyFile === '') return fail("'keyFile' must be a path");
        keyFile = path.resolve(path.dirname(file), raw.keyFile);
        key = readKeyFile(keyFile);
      }
      if (!key) return fail("no 'keyFile', and the monitor was started without --key-file");
      names.add(config.name);
      targets.push({ ...config, keyFile, key });
    } catch (err) {
      if (err instanceof TargetConfigError) return fail(err.message.replace(/^grass\.targets\[0\](?: \('[^']*'\))?:? ?/, ''));
      fail((err as Error).message);
    }
  });
  return { targets, errors };
}
