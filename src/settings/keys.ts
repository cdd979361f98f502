// Target keys: 32-byte HMAC keys (DESIGN §3.2, §6). The extension keeps them in VS Code's
// SecretStorage, the CLI reads them from a file as hex. Key material is never logged.

import { KEY_BYTES } from '../rdma/key';

export { KEY_BYTES };

/** Parses a key written as hex (64 digits; whitespace around it is ignored). The error never
 * repeats the input, since the input is the secret. */
export function parseKeyHex(text: string): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`a key is ${KEY_BYTES * 2} hex digits; the text given has other characters`);
  if (hex.length !== KEY_BYTES * 2) throw new Error(`a key is ${KEY_BYTES * 2} hex digits; the text given has ${hex.length}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Where the extension keeps one target's key. Implemented over vscode.SecretStorage. */
export interface SecretStore {
  get(key: string): Thenable<string | undefined>;
  store(key: string, value: string): Thenable<void>;
  delete(key: string): Thenable<void>;
  onDidChange(listener: (e: { key: string }) => unknown): { dispose(): void };
}

export class TargetKeys {
  constructor(private readonly secrets: SecretStore) {}

  private static readonly prefix = 'grass.targetKey/';

  private static id(targetName: string): string {
    return TargetKeys.prefix + targetName;
  }

  /** Fires with the target's name when its key is stored or deleted. */
  onDidChange(listener: (targetName: string) => void): { dispose(): void } {
    return this.secrets.onDidChange((e) => {
      if (e.key.startsWith(TargetKeys.prefix)) listener(e.key.slice(TargetKeys.prefix.length));
    });
  }

  async get(targetName: string): Promise<Uint8Array | undefined> {
    const hex = await this.secrets.get(TargetKeys.id(targetName));
    return hex === undefined ? undefined : parseKeyHex(hex);
  }

  async has(targetName: string): Promise<boolean> {
    return (await this.secrets.get(TargetKeys.id(targetName))) !== undefined;
  }

  /** Stores the key after checking it; throws without storing when it is malformed. */
  async set(targetName: string, hex: string): Promise<void> {
    const key = parseKeyHex(hex);
    await this.secrets.store(TargetKeys.id(targetName), Buffer.from(key).toString('hex'));
  }

  async delete(targetName: string): Promise<void> {
    await this.secrets.delete(TargetKeys.id(targetName));
  }
}
