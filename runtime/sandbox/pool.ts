// Several sandbox processes for one driver version, so that calls on
// different endpoints run side by side (a single instance takes one call at a
// time). The instances share nothing but the host: a driver keeps its state in
// the host's store, and dockerd sends one endpoint's calls one after another.
import type { CallOutcome, DriverCall, Invoker } from '../invoker.ts';
import type { ProcessSandbox } from './process-sandbox.ts';

export class SandboxPool implements Invoker {
  readonly sandboxes: ProcessSandbox[];

  constructor(sandboxes: ProcessSandbox[]) {
    if (sandboxes.length === 0) throw new Error('a sandbox pool needs at least one sandbox');
    this.sandboxes = sandboxes;
  }

  async start(): Promise<void> {
    await Promise.all(this.sandboxes.map((s) => s.start()));
  }

  /** The least busy instance that is not marked failed (a failed one answers at once, fail-closed). */
  invoke(call: DriverCall, timeoutMs: number): Promise<CallOutcome> {
    const live = this.sandboxes.filter((s) => !s.stats.failed);
    const pick = (live.length > 0 ? live : this.sandboxes).reduce((a, b) => (b.load < a.load ? b : a));
    return pick.invoke(call, timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all(this.sandboxes.map((s) => s.close()));
  }
}
