// The worker thread of component.ts's readComponent: hashes a component and,
// unless its digest is already known, parses its world. Parsing a 13 MB
// component takes jco's wasm-tools tens of milliseconds and leaves its
// linear memory hundreds of megabytes large; here it blocks no call the host
// is serving, and the memory goes with the thread.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { componentWorld } from './component.ts';

const { bytes, known } = workerData as { bytes: Uint8Array; known: string[] };
const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
let reply: Record<string, unknown>;
try {
  reply = known.includes(digest) ? { digest } : { digest, world: await componentWorld(bytes) };
} catch (e) {
  reply = { digest, error: (e as Error).message };
}
// The bytes go back to the host, which handed them over (transferred, not copied).
parentPort!.postMessage({ ...reply, bytes }, [bytes.buffer as ArrayBuffer]);
