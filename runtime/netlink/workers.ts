// Runs netlink operations on worker threads, so that a slow one (deleting a
// link waits for an RCU grace period, ~15 ms) blocks neither the host's event
// loop nor the other drivers' calls, and several of them can wait at once.
// Each worker holds its own RtNetlink socket (in the same namespace); the
// host's broker checks policy before handing an operation over.
import { Worker } from 'node:worker_threads';
import { NetlinkError } from './backend.ts';
import type { RtNetlinkOptions } from './rtnetlink.ts';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, Pending>;
}

export class NetlinkWorkers {
  private readonly slots: Slot[] = [];
  private nextId = 1;

  constructor(size: number, options: RtNetlinkOptions = {}) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./netlink-worker.ts', import.meta.url), { workerData: options });
      worker.unref();
      const slot: Slot = { worker, busy: 0, pending: new Map() };
      worker.on('message', (m: { id: number; result?: unknown; error?: { name: string; errno?: number; code?: string; message: string } }) => {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        slot.busy--;
        if (!m.error) return p.resolve(m.result);
        const e = m.error;
        p.reject(e.name === 'NetlinkError' ? new NetlinkError(e.errno ?? 0, e.code ?? 'EUNKNOWN', e.message) : new Error(e.message));
      });
      worker.on('error', (e) => {
        for (const p of slot.pending.values()) p.reject(e);
        slot.pending.clear();
      });
      this.slots.push(slot);
    }
  }

  /** Runs one backend operation (a NetlinkBackend method) on the least busy worker. */
  run(op: string, args: unknown[]): Promise<unknown> {
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, op, args });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
