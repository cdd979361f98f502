// sockaddr_in / sockaddr_in6 for rdma_cm, built from a host name or literal address.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { constants, sizes } from './abi';
import { getField, putField } from './native';

export async function resolveHost(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const family = isIP(host);
  if (family === 4 || family === 6) return { address: host, family };
  try {
    const r = await lookup(host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (err) {
    throw new Error(`cannot resolve '${host}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function encodeSockaddr(address: string, family: 4 | 6, port: number): Buffer {
  if (family === 4) {
    const b = Buffer.alloc(sizes.sockaddr_in);
    putField(b, 'sockaddr_in.sin_family', constants.AF_INET);
    b.writeUInt16BE(port, 2);
    Buffer.from(address.split('.').map(Number)).copy(b, 4);
    return b;
  }
  const b = Buffer.alloc(sizes.sockaddr_in6);
  putField(b, 'sockaddr_in6.sin6_family', constants.AF_INET6);
  b.writeUInt16BE(port, 2);
  ipv6Bytes(address).copy(b, 8);
  return b;
}

/** "host:port" (IPv6 in brackets) of a sockaddr_storage copied out of a cm_id. */
export function formatSockaddr(storage: Buffer): string {
  const family = getField(storage, 'sockaddr_in.sin_family');
  if (family === constants.AF_INET) {
    return `${[...storage.subarray(4, 8)].join('.')}:${storage.readUInt16BE(2)}`;
  }
  if (family === constants.AF_INET6) {
    const words: string[] = [];
    for (let i = 8; i < 24; i += 2) words.push(storage.readUInt16BE(i).toString(16));
    return `[${words.join(':')}]:${storage.readUInt16BE(2)}`;
  }
  return `(address family ${family})`;
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const words = tail === undefined ? left : [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  if (words.length !== 8 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) throw new Error(`bad IPv6 address '${address}'`);
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}
