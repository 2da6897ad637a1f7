// Starts the wasmnet host as a child process, on the runtime the test itself
// runs on (Node or Deno), optionally inside a network namespace, and waits for
// its socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

declare const Deno: { execPath(): string } | undefined;
export const onDeno = typeof Deno !== 'undefined';

export interface HostOptions {
  socketDir: string;
  stateDir: string;
  name: string;
  /** Run inside `ip netns exec <netns>`. */
  netns?: string;
  extraArgs?: string[];
}

export interface HostProcess {
  socketPath: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** The command that runs the CLI on this runtime. */
export function hostCommand(): string[] {
  return onDeno ? [Deno!.execPath(), 'run', '-A', join(repoRoot, 'host/deno/main.ts')] : [process.execPath, join(repoRoot, 'host/node/main.ts')];
}

export async function startHost(opts: HostOptions, timeoutMs = 60_000): Promise<HostProcess> {
  const args = [...hostCommand(), 'serve', '--socket-dir', opts.socketDir, '--state-dir', opts.stateDir, '--name', opts.name, ...(opts.extraArgs ?? [])];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...args] : args;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const socketPath = join(opts.socketDir, `${opts.name}.sock`);
  const started = Date.now();
  while (!out.includes(`serving ${opts.name} on ${socketPath}`)) {
    if (child.exitCode !== null) throw new Error(`wasmnet exited with ${child.exitCode}:\n${out}`);
    if (Date.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`wasmnet did not start within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!existsSync(socketPath)) throw new Error(`wasmnet said it serves ${socketPath}, but there is no socket`);
  return {
    socketPath,
    child,
    output: () => out,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done(child.exitCode);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          done(code);
        });
        child.kill('SIGTERM');
      }),
  };
}
