// Starts and stops the wasmnet host as a child process, for e2e tests and benchmarks.
//
// CLI contract:
//   node: node_modules/.bin/node host/cli/wasmnet.mjs serve --socket-dir DIR --state-dir DIR --name NAME
//   deno: node_modules/.bin/deno run -A host/deno/main.ts serve --socket-dir DIR --state-dir DIR --name NAME
// The host listens on <socket-dir>/<name>.sock and stops cleanly on SIGTERM.
// dockerd discovers legacy plugins only in /run/docker/plugins, so that is the
// default socket dir, with a unique plugin name per run.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, tailFile } from '../e2e/lib/dockerd.ts';
import { defaultEngine, engineNames, type EngineName } from '../../runtime/engine/select.ts';

export type Runtime = 'node' | 'deno';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
export const PLUGIN_DIR = '/run/docker/plugins';
export const NODE_BIN = path.join(REPO_ROOT, 'node_modules/.bin/node');
export const DENO_BIN = path.join(REPO_ROOT, 'node_modules/.bin/deno');
export const NODE_ENTRY = path.join(REPO_ROOT, 'host/cli/wasmnet.mjs');
export const DENO_ENTRY = path.join(REPO_ROOT, 'host/deno/main.ts');

/** env WASMNET_RUNTIME (node|deno), else the runtime this code runs on. */
export function defaultRuntime(): Runtime {
  const env = process.env.WASMNET_RUNTIME;
  if (env === 'node' || env === 'deno') return env;
  if (env) throw new Error(`WASMNET_RUNTIME must be node or deno, not ${JSON.stringify(env)}`);
  return 'Deno' in globalThis ? 'deno' : 'node';
}

/** env WASMNET_ENGINE (jco|wasmtime), else the host's default engine. */
export function engineUnderTest(): EngineName {
  const env = process.env.WASMNET_ENGINE;
  if (!env) return defaultEngine;
  if (!(engineNames as readonly string[]).includes(env)) throw new Error(`WASMNET_ENGINE must be one of ${engineNames.join(', ')}, not ${JSON.stringify(env)}`);
  return env as EngineName;
}

/**
 * The compiled-driver cache every host and CLI command of a test run shares:
 * env WASMNET_CACHE_DIR, else <tmpdir>/wasmnet-test-cache. A wasmtime compile
 * of a JavaScript driver takes tens of seconds; a fresh state dir per test
 * must not pay it again. Entries are named by component digest and engine
 * version, so sharing is safe. Set in this process's environment, so that the
 * `wasmnet` commands tests spawn (which read WASMNET_CACHE_DIR) use it too.
 */
export function testCacheDir(): string {
  process.env.WASMNET_CACHE_DIR ||= path.join(os.tmpdir(), 'wasmnet-test-cache');
  return process.env.WASMNET_CACHE_DIR;
}
testCacheDir();

/** A plugin name that no other run uses: <prefix>-<8 hex>. */
export function uniquePluginName(prefix = 'wasmnet-e2e'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** The command line of `wasmnet <args>` on the given runtime. */
export function cliCommand(runtime: Runtime, args: string[], entry?: string): { file: string; args: string[]; entry: string } {
  if (runtime === 'node') {
    const e = entry ?? NODE_ENTRY;
    return { file: NODE_BIN, args: [e, ...args], entry: e };
  }
  const e = entry ?? DENO_ENTRY;
  return { file: DENO_BIN, args: ['run', '-A', e, ...args], entry: e };
}

/** The command line that serves the plugin, for the given runtime. */
export function hostCommand(runtime: Runtime, serveArgs: string[], entry?: string): { file: string; args: string[]; entry: string } {
  return cliCommand(runtime, ['serve', ...serveArgs], entry);
}

export interface WasmnetHostOptions {
  runtime?: Runtime;
  /** Default PLUGIN_DIR (/run/docker/plugins). */
  socketDir?: string;
  /** Default: a fresh temp directory, removed by dispose(). */
  stateDir?: string;
  /** Plugin name; default uniquePluginName(). */
  name?: string;
  /** Bounded wait for the socket to accept a connection (default 60 s). */
  readyTimeoutMs?: number;
  /** More arguments after the serve flags. */
  extraArgs?: string[];
  /** Run the host inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Extra environment for the host process. */
  env?: Record<string, string>;
  /**
   * Another entry script in place of host/cli/wasmnet.mjs or host/deno/main.ts
   * (default: env WASMNET_HOST_ENTRY if set). Only for checking the tests
   * themselves against a stand-in plugin; the harness self-test uses a fake.
   */
  entry?: string;
}

/** Connects to a unix socket once; resolves true if it accepted. */
export function canConnect(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.end();
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
  });
}

const live = new Set<WasmnetHost>();
let exitHookInstalled = false;

export class WasmnetHost {
  readonly runtime: Runtime;
  readonly name: string;
  readonly socketDir: string;
  readonly stateDir: string;
  readonly socketPath: string;
  /** Output of every start of the host (appended), for diagnostics. */
  readonly logFile: string;
  readonly #readyTimeoutMs: number;
  readonly #extraArgs: string[];
  readonly #env: Record<string, string>;
  readonly #netns: string | undefined;
  readonly #entry: string | undefined;
  readonly #workDir: string;
  #child: ChildProcess | null = null;
  #exited = true;
  #exitInfo = '';
  #starts = 0;

  constructor(opts: WasmnetHostOptions = {}) {
    this.runtime = opts.runtime ?? defaultRuntime();
    this.name = opts.name ?? uniquePluginName();
    this.socketDir = opts.socketDir ?? PLUGIN_DIR;
    this.socketPath = path.join(this.socketDir, `${this.name}.sock`);
    this.#workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wnh-'));
    this.logFile = path.join(this.#workDir, 'host.log');
    this.stateDir = opts.stateDir ?? path.join(this.#workDir, 'state');
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
    this.#extraArgs = opts.extraArgs ?? [];
    this.#env = opts.env ?? {};
    this.#netns = opts.netns;
    this.#entry = opts.entry ?? (process.env.WASMNET_HOST_ENTRY || undefined);
  }

  get pid(): number | undefined {
    return this.#exited ? undefined : this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== null && !this.#exited;
  }

  logTail(lines = 40): string {
    return tailFile(this.logFile, lines);
  }

  /** Starts the host and waits (bounded) until its socket accepts a connection. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`wasmnet host ${this.name} already running (pid ${this.pid})`);
    const cmd = hostCommand(this.runtime, [
      '--socket-dir', this.socketDir,
      '--state-dir', this.stateDir,
      '--name', this.name,
      // The tests grant what the bundled drivers' manifests ask for, as an operator scripting an install would.
      '--grant-all',
      // The engine under test, and the compiled-driver cache shared by every host of the run.
      '--engine', engineUnderTest(),
      '--cache-dir', testCacheDir(),
      ...this.#extraArgs,
    ], this.#entry);
    if (!fs.existsSync(cmd.file)) throw new Error(`${cmd.file} not found (npm install?)`);
    if (!fs.existsSync(cmd.entry)) throw new Error(`wasmnet host entry point ${path.relative(REPO_ROOT, cmd.entry)} not found`);
    fs.mkdirSync(this.socketDir, { recursive: true });
    fs.mkdirSync(this.stateDir, { recursive: true });
    // Our name is unique and no host of ours runs: a socket file left here is stale.
    fs.rmSync(this.socketPath, { force: true });

    this.#starts++;
    fs.appendFileSync(this.logFile, `--- start #${this.#starts} (${this.runtime}): ${cmd.file} ${cmd.args.join(' ')}\n`);
    const fd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const [file, args] = this.#netns ? ['ip', ['netns', 'exec', this.#netns, cmd.file, ...cmd.args]] : [cmd.file, cmd.args];
      child = spawn(file, args, {
        cwd: REPO_ROOT,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...this.#env },
      });
    } finally {
      fs.closeSync(fd);
    }
    this.#child = child;
    this.#exited = false;
    this.#exitInfo = '';
    child.on('exit', (code, sig) => {
      if (this.#child === child) {
        this.#exited = true;
        this.#exitInfo = sig ? `killed by ${sig}` : `exit code ${code}`;
      }
    });
    child.on('error', (err) => {
      if (this.#child === child) {
        this.#exited = true;
        this.#exitInfo = `spawn error: ${err.message}`;
      }
    });
    child.unref();
    live.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const h of live) h.#killSync();
      });
    }

    const t0 = Date.now();
    while (true) {
      if (this.#exited) {
        throw new Error(`wasmnet host (${this.runtime}) exited during start (${this.#exitInfo}); output (${this.logFile}):\n${this.logTail()}`);
      }
      if (fs.existsSync(this.socketPath) && (await canConnect(this.socketPath))) return;
      if (Date.now() - t0 > this.#readyTimeoutMs) {
        const err = new Error(
          `wasmnet host (${this.runtime}) did not accept connections on ${this.socketPath} within ${this.#readyTimeoutMs} ms; output (${this.logFile}):\n${this.logTail()}`,
        );
        await this.stop();
        throw err;
      }
      await sleep(100);
    }
  }

  /**
   * Stops the host with SIGTERM (SIGKILL after `graceMs`). Keeps the state dir
   * and the log, so start() again is a restart. Returns how it ended.
   */
  async stop(graceMs = 15_000): Promise<string> {
    const child = this.#child;
    if (!child || this.#exited || child.pid === undefined) return this.#exitInfo || 'not running';
    const pid = child.pid;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
    const t0 = Date.now();
    while (!this.#exited && Date.now() - t0 < graceMs) await sleep(50);
    if (!this.#exited) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      const t1 = Date.now();
      while (!this.#exited && Date.now() - t1 < 5_000) await sleep(50);
      this.#exitInfo = `did not stop within ${graceMs} ms of SIGTERM; SIGKILLed`;
      this.#exited = true;
    }
    live.delete(this);
    return this.#exitInfo;
  }

  /** stop() then start() with the same state dir, socket dir and name. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the host, removes its socket, its log and (if it made it) its state dir. Never throws. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } catch {
      // best effort
    }
    fs.rmSync(this.socketPath, { force: true });
    // the default state dir lives in the work dir; a state dir passed in belongs to the caller
    if (process.env.WASMNET_KEEP_TMP !== '1') fs.rmSync(this.#workDir, { recursive: true, force: true });
    live.delete(this);
  }

  #killSync(): void {
    const pid = this.pid;
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      fs.rmSync(this.socketPath, { force: true });
    } catch {
      // best effort
    }
  }
}

/** new WasmnetHost(opts) and start(); on failure the host is disposed and the error (with its output) thrown. */
export async function startWasmnetHost(opts: WasmnetHostOptions = {}): Promise<WasmnetHost> {
  const h = new WasmnetHost(opts);
  try {
    await h.start();
  } catch (err) {
    await h.dispose();
    throw err;
  }
  return h;
}
