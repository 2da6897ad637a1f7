// The sandbox process of one driver (started by process-sandbox.ts, on the
// same runtime as the host, with no permission but to read the project and
// the compiled-driver cache). It holds no privilege: every host import is a
// synchronous request to the host over stdout, answered on stdin. It runs the
// driver with the in-process invoker and returns each call's outcome.
import { readSync, writeSync } from 'node:fs';
import { createEngine, type EngineName } from '../engine/select.ts';
import { callbacksImport } from '../callbacks.ts';
import { InProcessInvoker, type DriverCall } from '../invoker.ts';
import type { PreparedComponent } from '../engine/engine.ts';
import { decodeBody, encodeFrame, isOneWay, maxFrameBytes } from './wire.ts';

function readExactly(n: number): Buffer {
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    let r: number;
    try {
      r = readSync(0, buf, got, n - got, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw e;
    }
    if (r === 0) process.exit(0); // the host closed the pipe: nothing more to do
    got += r;
  }
  return buf;
}

function readMessage(): Record<string, unknown> {
  const length = readExactly(4).readUInt32BE(0);
  if (length > maxFrameBytes) throw new Error('oversized frame from the host');
  return decodeBody(readExactly(length)) as Record<string, unknown>;
}

function send(message: unknown): void {
  const frame = encodeFrame(message);
  let off = 0;
  while (off < frame.length) {
    try {
      off += writeSync(1, frame, off, frame.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

/** A host interface as the component sees it: every function is a request to the host. */
function proxyInterface(iface: string): Record<string, (...args: unknown[]) => unknown> {
  // Log lines return nothing and cannot fail: they are sent without waiting for an answer (isOneWay in wire.ts).
  const oneWay = isOneWay(iface);
  return new Proxy({}, {
    get(_t, fn) {
      if (typeof fn !== 'string') return undefined;
      if (oneWay) return (...args: unknown[]) => void send({ t: 'imp', iface, fn, args });
      return (...args: unknown[]) => {
        send({ t: 'imp', iface, fn, args });
        const reply = readMessage();
        if (reply.t === 'ret') return reply.value;
        if (reply.t === 'err') throw Object.assign(new Error(`${iface}.${fn} failed`), { payload: reply.payload });
        throw new Error(`${iface}.${fn}: ${String(reply.message ?? 'refused by the host')}`);
      };
    },
  });
}

const init = readMessage();
if (init.t !== 'init') throw new Error('sandbox: expected init');
const prepared = { digest: init.digest, imports: init.imports, exports: init.exports, dir: init.dir } as PreparedComponent & { dir: string };
const imports: Record<string, unknown> = {};
for (const name of prepared.imports) {
  imports[name] = name.startsWith('wasmnet:driver/callbacks@') ? callbacksImport : name.startsWith('wasmnet:driver/types@') ? {} : proxyInterface(name);
}

let invoker: InProcessInvoker;
try {
  const engine = await createEngine(init.engine as EngineName, String(init.cacheRoot), { memoryMaxBytes: Number(init.memoryMaxBytes), callTimeoutMs: Number(init.callTimeoutMs) });
  invoker = new InProcessInvoker(await engine.instantiate(prepared, imports as never));
  send({ t: 'ready' });
} catch (e) {
  send({ t: 'init-failed', message: (e as Error).message });
  process.exit(1);
}

for (;;) {
  const msg = readMessage();
  if (msg.t !== 'call') continue;
  const outcome = invoker.invokeSync(msg.call as DriverCall);
  send({ t: 'done', id: msg.id, outcome });
}
