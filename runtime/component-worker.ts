// The worker thread of component.ts's readComponent: hashes a component and,
// unless its digest is already known, parses its world. Parsing a 13 MB
// component takes jco's wasm-tools tens of milliseconds; here it blocks no
// call the host is serving. The thread lives as long as the host, so that
// its start (and, under Deno, its module loading) is paid once.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { componentWorld } from './component.ts';

parentPort!.on('message', async ({ id, bytes, known }: { id: number; bytes: Uint8Array; known: string[] }) => {
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  let reply: Record<string, unknown>;
  try {
    reply = known.includes(digest) ? { digest } : { digest, world: await componentWorld(bytes) };
  } catch (e) {
    reply = { digest, error: (e as Error).message };
  }
  // The bytes go back to the host, which handed them over (transferred, not copied).
  parentPort!.postMessage({ ...reply, id, bytes }, [bytes.buffer as ArrayBuffer]);
});
