// The agent's buffer description, sent as rdma_cm private data at connection set-up
// (gpu/include/grass/rdma.h; offsets checked by test/unit/verbs-abi.test.ts).

export const HELLO_MAGIC = 0x4f4c4548;
export const HELLO_BYTES = 56;
export const helloLayout = {
  magic: 0,
  version: 4,
  buffer_addr: 8,
  buffer_bytes: 16,
  rkey: 24,
  name: 32,
} as const;
export const HELLO_NAME_BYTES = 24;

export interface Hello {
  version: number;
  bufferAddress: bigint;
  bufferBytes: number;
  rkey: number;
  name: string;
}

export function decodeHello(data: Uint8Array, where: string): Hello {
  if (data.length < HELLO_BYTES) throw new Error(`${where}: the agent's set-up message is ${data.length} bytes, expected ${HELLO_BYTES} (not a GRASS agent?)`);
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  const magic = b.readUInt32LE(helloLayout.magic);
  if (magic !== HELLO_MAGIC) throw new Error(`${where}: bad set-up magic 0x${magic.toString(16)} (not a GRASS agent?)`);
  const bufferBytes = b.readBigUInt64LE(helloLayout.buffer_bytes);
  if (bufferBytes === 0n || bufferBytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${where}: the agent announced a buffer of ${bufferBytes} bytes`);
  const nameBytes = b.subarray(helloLayout.name, helloLayout.name + HELLO_NAME_BYTES);
  const end = nameBytes.indexOf(0);
  return {
    version: b.readUInt32LE(helloLayout.version),
    bufferAddress: b.readBigUInt64LE(helloLayout.buffer_addr),
    bufferBytes: Number(bufferBytes),
    rkey: b.readUInt32LE(helloLayout.rkey),
    name: nameBytes.subarray(0, end < 0 ? HELLO_NAME_BYTES : end).toString('utf8'),
  };
}
