// The agent's buffer description, sent as rdma_cm private data at connection set-up
// (struct grass_rdma_hello of gpu/include/grass/rdma.h; its layout generated into
// wire.generated.ts from the header).
import { GRASS_RDMA_HELLO_MAGIC, structs } from '../protocol/wire.generated';

const hello = structs.grass_rdma_hello;
export const HELLO_MAGIC = GRASS_RDMA_HELLO_MAGIC;
export const HELLO_BYTES = hello.size;
export const helloLayout = {
  magic: hello.fields.magic.offset,
  version: hello.fields.version.offset,
  buffer_addr: hello.fields.buffer_addr.offset,
  buffer_bytes: hello.fields.buffer_bytes.offset,
  rkey: hello.fields.rkey.offset,
  name: hello.fields.name.offset,
} as const;
export const HELLO_NAME_BYTES = hello.fields.name.size;

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
