// Target addresses (DESIGN §6): where an agent's buffer is, or an offline image to serve.
//   shm:<path>                          an agent's buffer in a shared-memory file
//   rdma://<host>[:<port>]              an agent reached over RDMA (IPv6 as [addr]; port 7471)
//   vmcore:<path>                       an ELF vmcore, served by a local agent started on demand
//   qemu-ram:<path>[?map=<map.json>]    a QEMU guest's RAM file, likewise

export const DEFAULT_RDMA_PORT = 7471;

export type TargetAddress =
  | { kind: 'shm'; path: string }
  | { kind: 'rdma'; host: string; port: number }
  | { kind: 'vmcore'; path: string }
  | { kind: 'qemu-ram'; path: string; memoryMap?: string };

export function parseTargetAddress(text: string): TargetAddress {
  const bad = (why: string): Error =>
    new Error(`target address '${text}': ${why} (expected shm:PATH, rdma://HOST[:PORT], vmcore:PATH or qemu-ram:PATH[?map=FILE])`);
  if (text.startsWith('shm:')) {
    const path = text.slice(4);
    if (!path) throw bad('empty path');
    return { kind: 'shm', path };
  }
  if (text.startsWith('rdma://')) {
    const m = /^rdma:\/\/(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]+))(?::(\d{1,5}))?\/?$/.exec(text);
    if (!m) throw bad('malformed rdma address');
    const port = m[3] === undefined ? DEFAULT_RDMA_PORT : Number(m[3]);
    if (port < 1 || port > 65535) throw bad(`port ${port} out of range`);
    return { kind: 'rdma', host: m[1] ?? m[2], port };
  }
  if (text.startsWith('vmcore:')) {
    const path = text.slice(7);
    if (!path) throw bad('empty path');
    return { kind: 'vmcore', path };
  }
  if (text.startsWith('qemu-ram:')) {
    const rest = text.slice(9);
    const q = rest.indexOf('?');
    const path = q < 0 ? rest : rest.slice(0, q);
    if (!path) throw bad('empty path');
    if (q < 0) return { kind: 'qemu-ram', path };
    const params = new URLSearchParams(rest.slice(q + 1));
    for (const name of params.keys()) if (name !== 'map') throw bad(`unknown parameter '${name}'`);
    const memoryMap = params.get('map') ?? undefined;
    if (memoryMap === '') throw bad('empty map path');
    return { kind: 'qemu-ram', path, memoryMap };
  }
  throw bad('unknown kind');
}

export function formatTargetAddress(address: TargetAddress): string {
  switch (address.kind) {
    case 'shm': return `shm:${address.path}`;
    case 'rdma': return `rdma://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
    case 'vmcore': return `vmcore:${address.path}`;
    case 'qemu-ram': return `qemu-ram:${address.path}${address.memoryMap ? `?map=${address.memoryMap}` : ''}`;
  }
}
