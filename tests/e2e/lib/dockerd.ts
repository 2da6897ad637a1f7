// A private dockerd for end-to-end tests and benchmarks.
//
// startDockerd() runs Debian's dockerd (20.10) as root with its own data root,
// exec root, pidfile, config file and API socket under a fresh temp directory,
// without iptables rules and without the default docker0 bridge. dockerd starts
// its own containerd (under <exec-root>/containerd) unless a system containerd
// socket exists at /run/containerd/containerd.sock; the containerd namespaces
// are unique per instance so that two instances never see each other's
// containers, even when they share a system containerd.
//
// Works on Node 26 and Deno 2 (only node:* modules). Every wait is bounded.

import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DOCKERD_BIN = '/usr/sbin/dockerd';
/** The client that matches the daemon (/usr/local/bin/docker is a newer one). */
export const DOCKER_BIN = '/usr/bin/docker';
export const BUSYBOX_BIN = '/bin/busybox';
export const BUSYBOX_IMAGE = 'wasmnet-busybox:latest';
/** Applets the tests rely on; importBusybox() links every applet busybox has, and fails if one of these is missing. */
export const REQUIRED_APPLETS = [
  'sh', 'ping', 'ip', 'ifconfig', 'route', 'cat', 'sleep', 'true', 'false', 'wget',
  'echo', 'ls', 'hostname', 'nc', 'arp', 'grep',
];

const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin';

export interface DockerdOptions {
  /** Bounded wait for the API to answer (default 60 s). */
  startTimeoutMs?: number;
  /** Storage driver; default: env WASMNET_DOCKERD_STORAGE_DRIVER, else dockerd's own choice (overlay2 here). */
  storageDriver?: string;
  /** dockerd --debug (default: env WASMNET_DOCKERD_DEBUG=1). Logs every plugin call. */
  debug?: boolean;
  /** More dockerd flags. */
  extraArgs?: string[];
  /** Keep the temp directory after stop() (default: env WASMNET_KEEP_TMP=1). */
  keepTmp?: boolean;
}

export interface CommandResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface DockerCallOptions {
  /** Default 120 s. */
  timeoutMs?: number;
}

/** Why the e2e tests cannot run here, or null when they can. */
export function canRunDockerd(): string | null {
  if (process.env.WASMNET_E2E === '0') return 'disabled by WASMNET_E2E=0';
  if (process.platform !== 'linux') return `platform is ${process.platform}, not linux`;
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid !== 0) return `not running as root (uid ${uid})`;
  for (const bin of [DOCKERD_BIN, DOCKER_BIN, BUSYBOX_BIN]) {
    try {
      fs.accessSync(bin, fs.constants.X_OK);
    } catch {
      return `${bin} is missing or not executable (apt-get install docker.io busybox-static)`;
    }
  }
  for (const tool of ['containerd', 'runc', 'tar', 'ip', 'umount']) {
    if (!findInPath(tool)) return `${tool} not found in ${SYSTEM_PATH}`;
  }
  if (!fs.existsSync('/sys/fs/cgroup')) return '/sys/fs/cgroup is not mounted';
  return null;
}

function findInPath(name: string): string | null {
  for (const dir of SYSTEM_PATH.split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a program, never throws for a non-zero exit; rejects only if it cannot be started. */
export function runCommand(
  file: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          // spawn failure (ENOENT, EACCES...)
          reject(err);
          return;
        }
        const e = err as (Error & { code?: number; signal?: string; killed?: boolean }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

/** Tail of a text file (last `lines` lines), '' if unreadable. */
export function tailFile(file: string, lines = 40): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Pids (other than ours) whose command line mentions `needle`. */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle)) out.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** `roots` and all their descendants (by parent pid), children first. */
function withDescendants(roots: number[]): number[] {
  const parent = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return roots;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces and parentheses
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const seen = new Set<number>();
  const visit = (pid: number) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    for (const [child, pp] of parent) if (pp === pid) visit(child);
    out.push(pid);
  };
  for (const r of roots) visit(r);
  return out;
}

/** Processes of this instance: whatever mentions its directory (dockerd, containerd, shims) and their descendants (containers). */
function instancePids(dir: string, extra: number[] = []): number[] {
  return withDescendants([...new Set([...extra, ...pidsMentioning(dir)])]).filter((p) => p !== process.pid);
}

/** Mount points at or under dir, deepest first. */
function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    // mountinfo escapes space, tab, newline and backslash as octal
    const p = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(prefix)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

const live = new Set<Dockerd>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a test process exits without stop(): synchronous, best effort.
  process.on('exit', () => {
    for (const d of live) d.emergencyCleanupSync();
  });
}

export class Dockerd {
  /** The temp directory that holds everything of this instance. */
  readonly dir: string;
  readonly socket: string;
  /** unix://<socket>, for -H / DOCKER_HOST. */
  readonly host: string;
  readonly logFile: string;
  readonly pidFile: string;
  readonly containerdNamespace: string;
  #child: ChildProcess | null = null;
  #exited = false;
  #exitInfo = '';
  #stopping: Promise<void> | null = null;
  #keepTmp: boolean;
  #clientEnv: NodeJS.ProcessEnv;

  constructor(dir: string, keepTmp: boolean) {
    this.dir = dir;
    this.socket = path.join(dir, 'docker.sock');
    this.host = `unix://${this.socket}`;
    this.logFile = path.join(dir, 'dockerd.log');
    this.pidFile = path.join(dir, 'docker.pid');
    this.containerdNamespace = `wasmnet-${path.basename(dir).replace(/[^a-zA-Z0-9]/g, '').slice(-12)}`;
    this.#keepTmp = keepTmp;
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: SYSTEM_PATH, DOCKER_CONFIG: path.join(dir, 'client') };
    delete env.DOCKER_HOST;
    delete env.DOCKER_CONTEXT;
    delete env.DOCKER_TLS_VERIFY;
    delete env.DOCKER_CERT_PATH;
    this.#clientEnv = env;
  }

  #daemonEnv(): NodeJS.ProcessEnv {
    const env = { ...this.#clientEnv };
    delete env.DOCKER_CONFIG;
    return env;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== null && !this.#exited;
  }

  /** Environment for running other docker clients against this daemon. */
  get clientEnv(): NodeJS.ProcessEnv {
    return { ...this.#clientEnv, DOCKER_HOST: this.host };
  }

  logTail(lines = 40): string {
    return tailFile(this.logFile, lines);
  }

  /** Runs /usr/bin/docker -H <this daemon> ...args; never throws for a non-zero exit. */
  dockerResult(args: string[], opts: DockerCallOptions = {}): Promise<CommandResult> {
    return runCommand(DOCKER_BIN, ['-H', this.host, ...args], {
      timeoutMs: opts.timeoutMs ?? 120_000,
      env: this.#clientEnv,
    });
  }

  /** Runs /usr/bin/docker -H <this daemon> ...args and returns stdout; throws with stderr on failure. */
  async docker(...args: string[]): Promise<string> {
    return this.dockerWith({}, ...args);
  }

  /** docker(...) with options (timeout). */
  async dockerWith(opts: DockerCallOptions, ...args: string[]): Promise<string> {
    const r = await this.dockerResult(args, opts);
    if (r.code !== 0) {
      const how = r.signal ? `killed by ${r.signal} (timeout ${opts.timeoutMs ?? 120_000} ms?)` : `exit ${r.code}`;
      throw new Error(`docker ${args.join(' ')}: ${how}: ${r.stderr.trim() || r.stdout.trim()}`);
    }
    return r.stdout;
  }

  /**
   * Builds BUSYBOX_IMAGE (wasmnet-busybox:latest) with `docker import` from a
   * tarball of /bin/busybox plus a symlink for every applet; no registry.
   * Returns the image id.
   */
  async importBusybox(tag = BUSYBOX_IMAGE): Promise<string> {
    const root = fs.mkdtempSync(path.join(this.dir, 'busybox-rootfs-'));
    const tarball = path.join(this.dir, 'busybox.tar');
    try {
      for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var/run']) {
        fs.mkdirSync(path.join(root, d), { recursive: true });
      }
      fs.chmodSync(path.join(root, 'tmp'), 0o1777);
      fs.copyFileSync(BUSYBOX_BIN, path.join(root, 'bin/busybox'));
      fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
      const list = execFileSync(BUSYBOX_BIN, ['--list'], { encoding: 'utf8' })
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s && s !== 'busybox' && !s.includes('/'));
      const missing = REQUIRED_APPLETS.filter((a) => !list.includes(a));
      if (missing.length) throw new Error(`${BUSYBOX_BIN} lacks applets: ${missing.join(', ')}`);
      for (const applet of list) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
      fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
      fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
      const tar = await runCommand('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tarball, '.'], {
        env: this.#clientEnv,
        timeoutMs: 60_000,
      });
      if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr}`);
      const out = await this.dockerWith({ timeoutMs: 120_000 }, 'import', '-c', 'CMD ["/bin/sh"]', tarball, tag);
      return out.trim();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(tarball, { force: true });
    }
  }

  /** Starts the daemon process and waits (bounded) until `docker version` answers. */
  async start(opts: DockerdOptions = {}): Promise<void> {
    const configFile = path.join(this.dir, 'daemon.json');
    fs.writeFileSync(configFile, '{}\n');
    fs.mkdirSync(path.join(this.dir, 'client'), { recursive: true });
    const storageDriver = opts.storageDriver ?? process.env.WASMNET_DOCKERD_STORAGE_DRIVER;
    const debug = opts.debug ?? process.env.WASMNET_DOCKERD_DEBUG === '1';
    const args = [
      '--config-file', configFile,
      '--data-root', path.join(this.dir, 'data'),
      '--exec-root', path.join(this.dir, 'exec'),
      '--pidfile', this.pidFile,
      '--host', this.host,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--containerd-namespace', this.containerdNamespace,
      '--containerd-plugins-namespace', `${this.containerdNamespace}-plugins`,
      '--shutdown-timeout', '3',
      ...(storageDriver ? ['--storage-driver', storageDriver] : []),
      ...(debug ? ['--debug'] : []),
      ...(opts.extraArgs ?? []),
    ];
    const fd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(DOCKERD_BIN, args, {
        stdio: ['ignore', fd, fd],
        env: this.#daemonEnv(),
        cwd: this.dir,
      });
    } finally {
      fs.closeSync(fd);
    }
    this.#child = child;
    live.add(this);
    installExitHook();
    child.on('exit', (code, sig) => {
      this.#exited = true;
      this.#exitInfo = sig ? `killed by ${sig}` : `exit code ${code}`;
    });
    child.on('error', (err) => {
      this.#exited = true;
      this.#exitInfo = `spawn error: ${err.message}`;
    });
    // Do not keep the test process alive just because dockerd runs; the exit hook kills it.
    child.unref();

    const timeoutMs = opts.startTimeoutMs ?? 60_000;
    const t0 = Date.now();
    let last = '';
    while (true) {
      if (this.#exited) {
        throw new Error(`dockerd exited during start (${this.#exitInfo}); log tail (${this.logFile}):\n${this.logTail()}`);
      }
      if (fs.existsSync(this.socket)) {
        const r = await this.dockerResult(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
        if (r.code === 0) return;
        last = r.stderr.trim();
      }
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(
          `dockerd did not answer within ${timeoutMs} ms (last: ${last || 'no socket'}); log tail (${this.logFile}):\n${this.logTail()}`,
        );
      }
      await sleep(100);
    }
  }

  /**
   * Removes every container (and every user-defined network of the built-in
   * bridge driver, whose Linux bridges dockerd would leave behind), stops
   * dockerd and its containerd and shims, unmounts what is left under the temp
   * directory and removes it. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const problems: string[] = [];
    if (this.running) {
      try {
        const ids = (await this.dockerResult(['ps', '-aq'], { timeoutMs: 20_000 })).stdout.split(/\s+/).filter(Boolean);
        if (ids.length) await this.dockerResult(['rm', '-f', ...ids], { timeoutMs: 60_000 });
        const nets = (
          await this.dockerResult(['network', 'ls', '-q', '--filter', 'type=custom', '--filter', 'driver=bridge'], { timeoutMs: 20_000 })
        ).stdout
          .split(/\s+/)
          .filter(Boolean);
        if (nets.length) await this.dockerResult(['network', 'rm', ...nets], { timeoutMs: 60_000 });
      } catch (err) {
        problems.push(`pre-stop cleanup: ${(err as Error).message}`);
      }
      const pid = this.#child?.pid;
      if (pid) {
        signal(pid, 'SIGTERM');
        if (!(await this.#waitExit(30_000))) {
          problems.push('dockerd ignored SIGTERM for 30 s; SIGKILL');
          signal(pid, 'SIGKILL');
          await this.#waitExit(10_000);
        }
      }
    }
    // containerd and shims started for this instance mention its directory; containers are their descendants.
    let stray = instancePids(this.dir);
    if (stray.length) {
      for (const p of stray) signal(p, 'SIGTERM');
      const t0 = Date.now();
      while (Date.now() - t0 < 10_000 && stray.some(isAlive)) await sleep(100);
      stray = stray.filter(isAlive);
      for (const p of stray) signal(p, 'SIGKILL');
    }
    for (const m of mountsUnder(this.dir)) {
      const r = await runCommand('umount', ['-l', m], { timeoutMs: 20_000, env: this.#clientEnv }).catch((e: Error) => ({ code: 1, stderr: e.message }));
      if (r.code !== 0) problems.push(`umount ${m}: ${r.stderr.trim()}`);
    }
    live.delete(this);
    if (!this.#keepTmp) {
      try {
        fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      } catch (err) {
        problems.push(`rm ${this.dir}: ${(err as Error).message}`);
      }
    }
    if (problems.length) console.error(`dockerd harness stop: ${problems.join('; ')}`);
  }

  async #waitExit(ms: number): Promise<boolean> {
    const t0 = Date.now();
    const pid = this.#child?.pid;
    while (Date.now() - t0 < ms) {
      if (this.#exited || (pid !== undefined && !isAlive(pid))) return true;
      await sleep(50);
    }
    return false;
  }

  /** Synchronous last resort for process exit: SIGKILL everything of this instance, unmount, remove. */
  emergencyCleanupSync(): void {
    const pid = this.#child?.pid;
    const pids = instancePids(this.dir, pid && !this.#exited ? [pid] : []);
    for (const p of pids) signal(p, 'SIGKILL');
    for (const m of mountsUnder(this.dir)) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore', timeout: 5_000, env: { PATH: SYSTEM_PATH } });
      } catch {
        // best effort
      }
    }
    if (!this.#keepTmp) {
      try {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
    live.delete(this);
  }
}

/** Creates a temp directory and starts a private dockerd in it. On failure everything is cleaned up and the error (with the log tail) is thrown. */
export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  const reason = canRunDockerd();
  if (reason) throw new Error(`cannot run dockerd: ${reason}`);
  // short path: unix socket paths (containerd's, too) must stay under 108 bytes
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wnd-${randomBytes(2).toString('hex')}-`));
  const keepTmp = opts.keepTmp ?? process.env.WASMNET_KEEP_TMP === '1';
  const d = new Dockerd(dir, keepTmp);
  try {
    await d.start(opts);
  } catch (err) {
    const tail = d.logTail();
    await d.stop();
    if (err instanceof Error && !err.message.includes('log tail') && tail) err.message += `\nlog tail:\n${tail}`;
    throw err;
  }
  return d;
}
