// The shared HMAC key: 32 bytes as hex in a file (DESIGN §6). Key material never appears in
// messages: errors name the file and what is wrong with it, not its contents.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

export const KEY_BYTES = 32;

export function readKeyFile(path: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const hex = text.trim();
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`key file ${path}: not hex (expected ${KEY_BYTES * 2} hex digits)`);
  if (hex.length !== KEY_BYTES * 2) throw new Error(`key file ${path}: ${hex.length} hex digits, expected ${KEY_BYTES * 2}`);
  return Buffer.from(hex, 'hex');
}

/** Writes a fresh random key, readable only by its owner. */
export function writeNewKeyFile(path: string): void {
  writeFileSync(path, randomBytes(KEY_BYTES).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
}
