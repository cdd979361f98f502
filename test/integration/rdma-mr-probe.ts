// Run inside the Soft-RoCE guest by rdma.test.ts (bundled with esbuild): connects to a listening
// agent with the verbs transport and posts RDMA READs at the end of and outside the buffer the agent registered,
// with the rkey the agent handed over, below the transport's own range check (the remote
// address is buffer address + offset, as for every read). Each read gets its own connection:
// a remote access error moves the queue pair to the error state. Prints one JSON line per read.
import { constants } from '../../src/rdma/verbs/abi';
import { VerbsTransport } from '../../src/rdma/verbs/transport';

async function readOutside(host: string, port: number, offsetFromEnd: number): Promise<Record<string, unknown>> {
  const transport = await VerbsTransport.connect(host, port, { opTimeoutMs: 10_000, connectTimeoutMs: 10_000 });
  const offset = transport.size + offsetFromEnd;
  try {
    // withBlock/post are private: this is the one caller that must skip read()'s checkRange.
    await transport['withBlock']((local) => transport['post'](constants.IBV_WR_RDMA_READ, local, 64, offset));
    return { offset, bufferBytes: transport.size, served: true };
  } catch (err) {
    return { offset, bufferBytes: transport.size, served: false, error: (err as Error).name, message: (err as Error).message };
  } finally {
    await transport.close();
  }
}

async function main(): Promise<void> {
  const [host, portText] = process.argv.slice(2);
  // The buffer's last 64 bytes (the control: served), just past the end, and 1 GiB past it.
  for (const offsetFromEnd of [-64, 0, 1 << 30]) console.log(JSON.stringify(await readOutside(host, Number(portText), offsetFromEnd)));
}

// exitCode, not exit(): on the guest's serial console stdout can be left with queued writes.
main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
