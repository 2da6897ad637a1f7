// Runs one driver in a process of its own (guest.ts), so that it can be
// stopped without stopping the host: on Deno a worker cannot be stopped while
// it spins, and a process is the same mechanism on both runtimes. The process
// gets the runtime's permission model (read the project and the compiled-
// driver cache; no writes, network, processes, workers, FFI or addons), a
// heap cap, the driver's wasm memory cap, and an OS-level memory cgroup.
// Privileged calls come back here as requests to the broker. Every call has a
// deadline; a driver that traps, crashes, returns too much or runs past its
// deadline is killed and restarted with exponential backoff, and a driver that
// keeps failing is marked failed: its calls then fail at once (fail-closed).
import { spawnSandboxProcess, type SandboxProcess } from './spawn.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import type { Logger } from 'pino';
import type { PreparedComponent } from '../engine/engine.ts';
import type { CallOutcome, DriverCall, Invoker } from '../invoker.ts';
import { encodeFrame, FrameReader, isOneWay } from './wire.ts';
import { memoryCgroup } from './os-limits.ts';
import { defaultEngine, type EngineName } from '../engine/select.ts';
import { atBootPriority, raiseToHostPriority } from './priority.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const guestEntry = join(root, 'runtime/sandbox/guest.ts');

declare const Deno: { execPath(): string } | undefined;

export interface SandboxLimits {
  /** Linear memory of the driver, all memories together. */
  memoryMaxBytes: number;
  /** JavaScript heap of the sandbox process, in MiB. */
  heapMaxMb: number;
  /** What the whole sandbox process may use beyond wasm memory and heap (the runtime itself), for its OS-level cap. */
  processOverheadBytes: number;
  /** Largest value a call may return (the encoded outcome), in bytes. */
  maxReturnBytes: number;
  /** Calls waiting for the driver beyond which new calls are refused. */
  maxQueuedCalls: number;
  /** First restart delay; doubles with each consecutive failure. */
  restartBaseMs: number;
  restartMaxMs: number;
  /** Failures within `failureWindowMs` after which the driver is marked failed. */
  maxFailures: number;
  failureWindowMs: number;
}

export const defaultLimits: SandboxLimits = {
  memoryMaxBytes: 256 * 1024 * 1024,
  heapMaxMb: 256,
  processOverheadBytes: 256 * 1024 * 1024,
  maxReturnBytes: 1024 * 1024,
  maxQueuedCalls: 64,
  restartBaseMs: 100,
  restartMaxMs: 30_000,
  maxFailures: 5,
  failureWindowMs: 60_000,
};

export type HostImports = Record<string, Record<string, (...args: unknown[]) => unknown>>;

export interface SandboxOptions {
  driver: string;
  prepared: PreparedComponent;
  /** The engine that runs the driver, and the host's cache root (the engine's compiled components are under it). */
  engine: EngineName;
  cacheRoot: string;
  /** Deadline of one call (the wasmtime engine interrupts a call past it by itself). */
  callTimeoutMs: number;
  /** The broker: host imports by versioned interface name. */
  imports: HostImports;
  logger: Logger;
  limits?: Partial<SandboxLimits>;
}

export interface SandboxStats {
  starts: number;
  traps: number;
  timeouts: number;
  crashes: number;
  oversized: number;
  /** Calls whose deadline passed before the sandbox could take them (waiting behind another call or a restart): not run. */
  expired: number;
  failed: boolean;
}

interface Pending {
  id: number;
  resolve: (o: CallOutcome) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The command line of a sandbox process: the host's runtime, with its
 * permission model shut but for reading code (and, for the wasmtime engine,
 * loading its native addon).
 */
export function sandboxCommand(cacheDir: string, heapMaxMb: number, entry = guestEntry, engine: EngineName = defaultEngine): [string, string[]] {
  const addon = join(root, 'runtime/engine/wasmtime/wasmnet_wasmtime.node');
  if (typeof Deno !== 'undefined') {
    const ffi = engine === 'wasmtime' ? [`--allow-ffi=${addon}`] : [];
    return [Deno.execPath(), ['run', '--no-prompt', '--no-check', `--allow-read=${root},${cacheDir}`, '--allow-env=JCO_DEBUG', ...ffi, `--v8-flags=--max-old-space-size=${heapMaxMb}`, entry]];
  }
  const addons = engine === 'wasmtime' ? ['--allow-addons'] : [];
  return [process.execPath, ['--permission', `--allow-fs-read=${root}`, `--allow-fs-read=${cacheDir}`, ...addons, `--max-old-space-size=${heapMaxMb}`, entry]];
}

/** The sandboxes of this process that are not closed (the admin API shows their stats). */
const openSandboxes = new Set<ProcessSandbox>();

/** The sandboxes not closed yet, oldest first. */
export function sandboxes(): ProcessSandbox[] {
  return [...openSandboxes];
}

export class ProcessSandbox implements Invoker {
  readonly stats: SandboxStats = { starts: 0, traps: 0, timeouts: 0, crashes: 0, oversized: 0, expired: 0, failed: false };
  private readonly opts: SandboxOptions;
  private readonly limits: SandboxLimits;
  private child: SandboxProcess | undefined;
  private ready: Promise<void> | undefined;
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private nextId = 1;
  private consecutiveFailures = 0;
  private failures: number[] = [];
  private notBefore = 0;
  private closed = false;
  private warnedNoCgroup = false;
  private warnedPriority = false;

  constructor(opts: SandboxOptions) {
    this.opts = opts;
    this.limits = { ...defaultLimits, ...opts.limits };
    openSandboxes.add(this);
  }

  /** The driver's name. */
  get driver(): string {
    return this.opts.driver;
  }

  /** The digest of the component this sandbox runs. */
  get digest(): string {
    return this.opts.prepared.digest;
  }

  /** Calls taken or waiting. */
  get load(): number {
    return this.queued;
  }

  /** The process id of the sandbox, when one runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  /** Starts the sandbox process now (otherwise the first call does). */
  async start(): Promise<void> {
    await this.ensureChild();
  }

  private spawnChild(): Promise<void> {
    const log = this.opts.logger;
    // The OS-level cap: the process enters its memory cgroup before the runtime starts (os-limits.ts).
    const cap = this.limits.memoryMaxBytes + this.limits.heapMaxMb * 1024 * 1024 + this.limits.processOverheadBytes;
    const cgroup = memoryCgroup(cap, this.opts.driver);
    if (!cgroup && !this.warnedNoCgroup) {
      this.warnedNoCgroup = true;
      log.warn({ driver: this.opts.driver }, 'no memory cgroup available: the sandbox has its wasm and heap caps but no OS-level memory cap');
    }
    // It boots at a low priority and is raised once ready (priority.ts): a starting version must not slow the one serving.
    const command = atBootPriority(...sandboxCommand(this.opts.cacheRoot, this.limits.heapMaxMb, guestEntry, this.opts.engine));
    const [file, args] = cgroup ? cgroup.wrap(...command) : command;
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    if (process.env.HOME) env.HOME = process.env.HOME;
    if (process.env.DENO_DIR) env.DENO_DIR = process.env.DENO_DIR;
    let child: SandboxProcess;
    try {
      child = spawnSandboxProcess(file, args, { env, cwd: root });
    } catch (e) {
      cgroup?.remove();
      return Promise.reject(e);
    }
    this.child = child;
    this.stats.starts++;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      stderr = (stderr + d).slice(-4096);
    });
    return new Promise<void>((resolveReady, rejectReady) => {
      let started = false;
      const reader = new FrameReader(
        this.limits.maxReturnBytes,
        (msg) => {
          const m = msg as Record<string, unknown>;
          if (m.t === 'ready') {
            started = true;
            if (child.pid !== undefined && !raiseToHostPriority(child.pid) && !this.warnedPriority) {
              this.warnedPriority = true;
              log.warn({ driver: this.opts.driver }, 'could not raise the sandbox from its boot priority (needs CAP_SYS_NICE): it serves at nice 19');
            }
            resolveReady();
          } else if (m.t === 'init-failed') rejectReady(new Error(`driver ${this.opts.driver} did not start: ${String(m.message)}`));
          else if (m.t === 'imp') this.serveImport(child, m);
          else if (m.t === 'done') this.finish(Number(m.id), m.outcome as CallOutcome);
        },
        (bytes) => {
          this.stats.oversized++;
          log.warn({ driver: this.opts.driver, bytes }, 'sandbox sent an oversized message: killed');
          this.kill(child);
          this.fail({ ok: false, trap: `the driver returned ${bytes} bytes, over the ${this.limits.maxReturnBytes}-byte limit` });
        },
      );
      child.stdout!.on('data', (chunk: Buffer) => reader.push(chunk));
      child.stdin!.on('error', () => {});
      child.once('exit', (code, signal) => {
        cgroup?.remove();
        if (this.child === child) {
          this.child = undefined;
          this.ready = undefined;
        }
        if (!started) rejectReady(new Error(`driver ${this.opts.driver}: sandbox exited during start (${signal ?? code}): ${stderr.trim().slice(-1000)}`));
        if (this.pending) {
          this.stats.crashes++;
          log.warn({ driver: this.opts.driver, code, signal, stderr: stderr.trim().slice(-500) }, 'sandbox died during a call');
          this.fail({ ok: false, trap: `the driver's sandbox exited (${signal ?? `code ${code}`})` });
        }
      });
      child.stdin!.write(
        encodeFrame({
          t: 'init',
          digest: this.opts.prepared.digest,
          imports: this.opts.prepared.imports,
          exports: this.opts.prepared.exports,
          dir: (this.opts.prepared as PreparedComponent & { dir?: string }).dir,
          engine: this.opts.engine,
          cacheRoot: this.opts.cacheRoot,
          callTimeoutMs: this.opts.callTimeoutMs,
          memoryMaxBytes: this.limits.memoryMaxBytes,
        }),
      );
    });
  }

  /** A host import requested by the driver: the broker runs it, its answer goes back. */
  private serveImport(child: SandboxProcess, m: Record<string, unknown>): void {
    const iface = String(m.iface);
    const fn = String(m.fn);
    const impl = Object.hasOwn(this.opts.imports, iface) ? this.opts.imports[iface] : undefined;
    const f = impl && Object.hasOwn(impl, fn) ? impl[fn] : undefined;
    // A one-way import (a log line) gets no answer: the driver did not wait for one.
    const oneWay = isOneWay(iface);
    const send = (reply: unknown) => {
      if (child.exitCode !== null) return;
      if (oneWay) {
        if ((reply as { t: string }).t !== 'ret') this.opts.logger.warn({ driver: this.opts.driver, iface, fn, reply }, 'one-way host call refused');
        return;
      }
      let frame: Buffer;
      try {
        frame = encodeFrame(reply);
      } catch (e) {
        // An answer over the frame limit fails the import; it must not throw here (nor in a promise's callback).
        frame = encodeFrame({ t: 'fatal', message: `${iface}.${fn}: ${(e as Error).message}` });
      }
      child.stdin!.write(frame);
    };
    const failed = (e: unknown) => {
      const payload = (e as { payload?: unknown })?.payload;
      send(payload !== undefined ? { t: 'err', payload } : { t: 'fatal', message: (e as Error)?.message ?? String(e) });
    };
    if (typeof f !== 'function' || !Array.isArray(m.args)) return send({ t: 'fatal', message: `${iface}.${fn} is not offered to this driver` });
    try {
      const value = f(...m.args);
      // Operations on the netlink workers answer later; the driver waits for them.
      if (value instanceof Promise) value.then((v) => send({ t: 'ret', value: v }), failed);
      else send({ t: 'ret', value });
    } catch (e) {
      failed(e);
    }
  }

  private async ensureChild(): Promise<void> {
    if (this.stats.failed) throw new Error(`driver ${this.opts.driver} is marked failed after ${this.limits.maxFailures} failures; restart the host to try again`);
    if (this.ready) return this.ready;
    const wait = this.notBefore - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.ready = this.spawnChild();
    try {
      await this.ready;
    } catch (e) {
      this.ready = undefined;
      this.recordFailure();
      throw e;
    }
  }

  private kill(child: SandboxProcess | undefined): void {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (this.child === child) {
      this.child = undefined;
      this.ready = undefined;
    }
  }

  private recordFailure(): void {
    const now = performance.now();
    this.consecutiveFailures++;
    this.failures = [...this.failures.filter((t) => now - t < this.limits.failureWindowMs), now];
    this.notBefore = now + Math.min(this.limits.restartMaxMs, this.limits.restartBaseMs * 2 ** (this.consecutiveFailures - 1));
    if (this.failures.length >= this.limits.maxFailures && !this.stats.failed) {
      this.stats.failed = true;
      this.opts.logger.error({ driver: this.opts.driver, failures: this.failures.length }, 'driver marked failed: its calls are refused until the host restarts');
    }
  }

  /** Ends the pending call with a failure, counting it towards backoff. */
  private fail(outcome: CallOutcome): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.recordFailure();
    p.resolve(outcome);
  }

  private finish(id: number, outcome: CallOutcome): void {
    const p = this.pending;
    if (!p || p.id !== id) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!outcome.ok && 'trap' in outcome) {
      // A trapped instance is unusable: start afresh (its state is in the store).
      this.stats.traps++;
      this.opts.logger.warn({ driver: this.opts.driver, trap: outcome.trap }, 'driver trapped: restarting its sandbox');
      this.kill(this.child);
      this.recordFailure();
    } else {
      this.consecutiveFailures = 0;
    }
    p.resolve(outcome);
  }

  invoke(call: DriverCall, timeoutMs: number): Promise<CallOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, trap: 'the sandbox is closed' });
    if (this.queued >= this.limits.maxQueuedCalls) {
      return Promise.resolve({ ok: false, error: { kind: 'no-service', message: `driver ${this.opts.driver} is busy: ${this.queued} calls waiting` } });
    }
    this.queued++;
    // The caller gives up at this deadline, whether the call waited for an
    // earlier one, for a restart, or ran: nothing of it may happen later.
    const deadline = performance.now() + timeoutMs;
    const run = async (): Promise<CallOutcome> => {
      try {
        await this.ensureChild();
      } catch (e) {
        return { ok: false, trap: (e as Error).message };
      }
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) {
        // Not the driver's fault: not counted towards backoff, and not sent.
        this.stats.expired++;
        this.opts.logger.warn({ driver: this.opts.driver, call: `${call.iface}.${call.fn}`, timeoutMs }, 'driver call expired before the sandbox could take it: not run');
        return { ok: false, trap: `no answer within ${timeoutMs} ms: the call waited for the driver's sandbox and was not run`, timedOut: true };
      }
      const child = this.child!;
      const id = this.nextId++;
      return new Promise<CallOutcome>((resolveCall) => {
        const pending: Pending = { id, resolve: resolveCall };
        this.pending = pending;
        pending.timer = setTimeout(() => {
          if (this.pending !== pending) return;
          this.stats.timeouts++;
          this.opts.logger.warn({ driver: this.opts.driver, call: `${call.iface}.${call.fn}`, timeoutMs }, 'driver call timed out: sandbox killed');
          this.kill(child);
          this.fail({ ok: false, trap: `no answer within ${timeoutMs} ms: the driver's sandbox was killed`, timedOut: true });
        }, left);
        try {
          child.stdin!.write(encodeFrame({ t: 'call', id, call }));
        } catch (e) {
          this.fail({ ok: false, trap: `cannot send the call: ${(e as Error).message}` });
        }
      });
    };
    const result = this.queue.then(run, run).finally(() => this.queued--);
    this.queue = result;
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    openSandboxes.delete(this);
    const child = this.child;
    this.kill(child);
    // Until it is gone (briefly at most), so that its cgroup goes with it before the host exits.
    if (child && child.exitCode === null) {
      await new Promise<void>((done) => {
        const timer = setTimeout(done, 2_000);
        child.once('exit', () => {
          clearTimeout(timer);
          done();
        });
      });
    }
  }
}
