// Reading a component file: its digest and its world (what it imports and
// exports), independent of the engine that will run it.
import { Worker } from 'node:worker_threads';

/** Worlds already read, by digest: reading one means parsing the whole component. */
const worlds = new Map<string, { imports: string[]; exports: string[] }>();

export interface ComponentRead {
  /** The same bytes, handed back by the worker. */
  bytes: Uint8Array;
  digest: string;
  imports: string[];
  exports: string[];
}

type Reply = { id: number; bytes: Uint8Array; digest: string; world?: { imports: string[]; exports: string[] }; error?: string };

/** The reader thread (component-worker.ts), started at the first read, and the reads waiting for it. */
let reader: { worker: Worker; pending: Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }> } | undefined;
let nextRead = 1;

function readerThread(): NonNullable<typeof reader> {
  if (reader) return reader;
  const worker = new Worker(new URL('./component-worker.ts', import.meta.url));
  const r = { worker, pending: new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>() };
  const fail = (e: Error) => {
    if (reader === r) reader = undefined;
    for (const p of r.pending.values()) p.reject(e);
    r.pending.clear();
  };
  worker.on('message', (m: Reply) => {
    const p = r.pending.get(m.id);
    r.pending.delete(m.id);
    if (r.pending.size === 0) worker.unref();
    p?.resolve(m);
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the component reader stopped (exit code ${code}) before answering`)));
  // It keeps the host alive only while a read waits for it (unref after the listeners: adding one refs the worker again).
  worker.unref();
  reader = r;
  return r;
}

/**
 * Hashes a component and reads its world on a worker thread of the host's
 * (component-worker.ts), so that a host serving calls does not stall for it
 * (an upgrade reads a package while calls keep coming). The bytes are
 * transferred to the worker and back: the caller must use the returned
 * `bytes`, the ones that were hashed.
 */
export async function readComponent(input: Uint8Array): Promise<ComponentRead> {
  // A buffer of its own, whole, so that it can be transferred.
  const bytes = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength && input.buffer instanceof ArrayBuffer ? input : input.slice();
  const r = readerThread();
  const id = nextRead++;
  const reply = await new Promise<Reply>((resolve, reject) => {
    r.pending.set(id, { resolve, reject });
    r.worker.ref();
    r.worker.postMessage({ id, bytes, known: [...worlds.keys()] }, [bytes.buffer as ArrayBuffer]);
  });
  if (reply.error !== undefined) throw new Error(reply.error);
  let w = worlds.get(reply.digest);
  if (!w) {
    if (!reply.world) throw new Error(`the component reader returned no world for ${reply.digest}`);
    w = reply.world;
    worlds.set(reply.digest, w);
  }
  return { bytes: reply.bytes, digest: reply.digest, imports: [...w.imports], exports: [...w.exports] };
}

/**
 * The component's world: the interfaces it imports and exports, with their
 * versions (jco's own lists drop them). A world that imports or exports
 * anything but whole named interfaces (a bare function, an inline interface)
 * is refused: the host offers nothing of the kind.
 */
export async function componentWorld(bytes: Uint8Array): Promise<{ imports: string[]; exports: string[] }> {
  // The preamble: \0asm, then version 0x0d and layer 1 (a core module has version 1, layer 0).
  const preamble = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
  if (bytes.length < 8 || preamble.some((b, i) => bytes[i] !== b)) {
    throw new Error(`not a WebAssembly component: ${bytes.length >= 8 && bytes[4] === 1 ? 'a core module' : 'no component preamble'}`);
  }
  const { componentWit } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  let wit: string;
  try {
    wit = await componentWit(bytes);
  } catch (e) {
    throw new Error(`not a WebAssembly component: ${(e as Error).message}`);
  }
  const body = /^world root \{\n([\s\S]*?)^\}/m.exec(wit)?.[1];
  if (body === undefined) throw new Error('component has no world');
  const imports: string[] = [];
  const exports: string[] = [];
  for (const line of body.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'))) {
    const m = /^(import|export) ([a-z0-9-]+:[a-z0-9-]+\/[a-z0-9-]+(?:@[0-9A-Za-z.+-]+)?);$/.exec(line);
    if (!m) throw new Error(`component world has an item the host does not support: ${line.slice(0, 200)}`);
    (m[1] === 'import' ? imports : exports).push(m[2]!);
  }
  return { imports, exports };
}

export { digestOf } from './engine/engine.ts';
