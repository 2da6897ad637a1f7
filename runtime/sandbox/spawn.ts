// Starting a sandbox process without stalling the host. Node's
// child_process.spawn forks the whole host (libuv uses fork(2)) and waits for
// the child to exec: with a host of a few hundred megabytes that blocks its
// event loop for tens of milliseconds, which every call in flight pays during
// a hot swap. glibc's posix_spawn(3) starts the child with
// CLONE_VM|CLONE_VFORK instead, so nothing is copied and the host waits only
// for the exec. No library offers posix_spawn with pipes to Node, so this
// binds it through koffi (as the netlink socket binds libc) and wraps the
// pipes in Node streams (Node and Deno alike). Elsewhere than Linux,
// child_process.spawn is used.
import { spawn as nodeSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import process from 'node:process';
import type { Readable, Writable } from 'node:stream';
import koffi from 'koffi';

/** What a sandbox needs of its process: pipes, its pid, its exit, a way to kill it. */
export interface SandboxProcess {
  readonly pid: number | undefined;
  /** null while it runs. */
  readonly exitCode: number | null;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  kill(signal: NodeJS.Signals): void;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

export interface SpawnOptions {
  env: Record<string, string>;
  cwd: string;
}

const O_CLOEXEC = 0o2000000;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSIGDEF = 0x04;
/** glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336 bytes) and sigset_t (128 bytes), with room to spare. */
const FILE_ACTIONS_SIZE = 128;
const ATTR_SIZE = 512;
const SIGSET_SIZE = 128;

type Libc = {
  pipe2: (fds: Int32Array, flags: number) => number;
  close: (fd: number) => number;
  posix_spawn_file_actions_init: (fa: Uint8Array) => number;
  posix_spawn_file_actions_adddup2: (fa: Uint8Array, fd: number, newfd: number) => number;
  posix_spawn_file_actions_addchdir_np: (fa: Uint8Array, path: string) => number;
  posix_spawn_file_actions_destroy: (fa: Uint8Array) => number;
  posix_spawnattr_init: (attr: Uint8Array) => number;
  posix_spawnattr_setflags: (attr: Uint8Array, flags: number) => number;
  posix_spawnattr_setsigmask: (attr: Uint8Array, set: Uint8Array) => number;
  posix_spawnattr_setsigdefault: (attr: Uint8Array, set: Uint8Array) => number;
  posix_spawnattr_destroy: (attr: Uint8Array) => number;
  posix_spawn: (pid: Int32Array, path: string, fa: Uint8Array, attr: Uint8Array, argv: (string | null)[], envp: (string | null)[]) => number;
  waitpid: (pid: number, status: Int32Array, options: number) => number;
};

let libc: Libc | undefined;
function bindLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)'),
    close: lib.func('int close(int fd)'),
    posix_spawn_file_actions_init: lib.func('int posix_spawn_file_actions_init(void *fa)'),
    posix_spawn_file_actions_adddup2: lib.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
    posix_spawn_file_actions_addchdir_np: lib.func('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
    posix_spawn_file_actions_destroy: lib.func('int posix_spawn_file_actions_destroy(void *fa)'),
    posix_spawnattr_init: lib.func('int posix_spawnattr_init(void *attr)'),
    posix_spawnattr_setflags: lib.func('int posix_spawnattr_setflags(void *attr, short flags)'),
    posix_spawnattr_setsigmask: lib.func('int posix_spawnattr_setsigmask(void *attr, const void *set)'),
    posix_spawnattr_setsigdefault: lib.func('int posix_spawnattr_setsigdefault(void *attr, const void *set)'),
    posix_spawnattr_destroy: lib.func('int posix_spawnattr_destroy(void *attr)'),
    posix_spawn: lib.func('int posix_spawn(_Out_ int *pid, const char *path, const void *fa, const void *attr, const char **argv, const char **envp)'),
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
  } as unknown as Libc;
  return libc;
}

/** Every signal, reset to its default action in the child (the host ignores or handles some; SIGKILL and SIGSTOP stay as they are). */
function allSignals(): Uint8Array {
  const set = new Uint8Array(SIGSET_SIZE);
  set.fill(0xff, 0, 8); // signals 1 to 64
  return set;
}

/** A child started with posix_spawn: its pipes as streams, reaped with waitpid once its pipes close. */
class SpawnedProcess extends EventEmitter implements SandboxProcess {
  readonly pid: number;
  readonly stdin: net.Socket;
  readonly stdout: net.Socket;
  readonly stderr: net.Socket;
  exitCode: number | null = null;
  #open = 2;
  #reaped = false;

  constructor(pid: number, stdin: number, stdout: number, stderr: number) {
    super();
    this.pid = pid;
    this.stdin = new net.Socket({ fd: stdin, readable: false, writable: true });
    this.stdout = new net.Socket({ fd: stdout, readable: true, writable: false });
    this.stderr = new net.Socket({ fd: stderr, readable: true, writable: false });
    this.stdin.on('error', () => {});
    for (const s of [this.stdout, this.stderr]) {
      s.on('error', () => {});
      s.once('close', () => {
        if (--this.#open === 0) this.#reap(0);
      });
    }
  }

  /** Collects the exit status without blocking; the pipes closed, so the process is ending (a moment at most). */
  #reap(attempt: number): void {
    if (this.#reaped) return;
    const status = new Int32Array(1);
    const r = bindLibc().waitpid(this.pid, status, WNOHANG);
    if (r === 0) {
      // Still running (it closed its pipes itself, or is being torn down): look again, less often.
      setTimeout(() => this.#reap(attempt + 1), Math.min(1000, 5 * 2 ** Math.min(attempt, 8))).unref();
      return;
    }
    this.#reaped = true;
    // r < 0 (ECHILD): reaped elsewhere, status unknown; else the wait status: low 7 bits the signal, next byte the exit code.
    const termsig = r > 0 ? status[0]! & 0x7f : 0;
    const code = r > 0 && termsig === 0 ? (status[0]! >> 8) & 0xff : null;
    const signal = termsig === 0 ? null : ((Object.entries(os.constants.signals).find(([, n]) => n === termsig)?.[0] ?? null) as NodeJS.Signals | null);
    this.exitCode = code ?? 128 + termsig;
    this.stdin.destroy();
    this.emit('exit', code, signal);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#reaped) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
    // A child that closed its pipes before it was killed is reaped by the pending look.
  }
}

/** Whether posix_spawn is used (Linux with glibc, on Node or Deno). */
export const fastSpawnAvailable = process.platform === 'linux';

/** Starts `file args` with three pipes, without forking the host where it can. */
export function spawnSandboxProcess(file: string, args: string[], opts: SpawnOptions): SandboxProcess {
  if (!fastSpawnAvailable) return nodeSpawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd }) as unknown as SandboxProcess;
  const c = bindLibc();
  const fds: number[] = [];
  const pipe = (): [number, number] => {
    const p = new Int32Array(2);
    if (c.pipe2(p, O_CLOEXEC) !== 0) throw new Error(`pipe2: errno ${koffi.errno()}`);
    fds.push(p[0]!, p[1]!);
    return [p[0]!, p[1]!];
  };
  const fa = new Uint8Array(FILE_ACTIONS_SIZE);
  const attr = new Uint8Array(ATTR_SIZE);
  try {
    const [inR, inW] = pipe();
    const [outR, outW] = pipe();
    const [errR, errW] = pipe();
    c.posix_spawn_file_actions_init(fa);
    c.posix_spawnattr_init(attr);
    try {
      // dup2 clears close-on-exec on the copies; every other descriptor of the host is close-on-exec (libuv opens them so).
      c.posix_spawn_file_actions_adddup2(fa, inR, 0);
      c.posix_spawn_file_actions_adddup2(fa, outW, 1);
      c.posix_spawn_file_actions_adddup2(fa, errW, 2);
      c.posix_spawn_file_actions_addchdir_np(fa, opts.cwd);
      c.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
      c.posix_spawnattr_setsigmask(attr, new Uint8Array(SIGSET_SIZE));
      c.posix_spawnattr_setsigdefault(attr, allSignals());
      const pid = new Int32Array(1);
      const env = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
      const r = c.posix_spawn(pid, file, fa, attr, [file, ...args, null], [...env, null]);
      if (r !== 0) throw new Error(`cannot start ${file}: posix_spawn errno ${r}`);
      // The child's ends are its own now.
      for (const fd of [inR, outW, errW]) c.close(fd);
      fds.length = 0;
      return new SpawnedProcess(pid[0]!, inW, outR, errR);
    } finally {
      c.posix_spawn_file_actions_destroy(fa);
      c.posix_spawnattr_destroy(attr);
    }
  } catch (e) {
    for (const fd of fds) c.close(fd);
    throw e;
  }
}
