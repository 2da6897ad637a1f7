// An OS-level memory cap for a sandbox process: a memory cgroup of its own
// (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`), under the host's
// own cgroup. Past the cap the kernel kills the sandbox, never the host. Where
// no memory controller is writable (not root, no cgroup), the wasm memory cap
// and the heap cap still hold, and the host says so in its log.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

interface CgroupFlavour {
  /** Directory of the host's own memory cgroup. */
  base: string;
  limitFile: string;
}

function detect(): CgroupFlavour | undefined {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    return undefined;
  }
  // cgroup v1 with a memory hierarchy.
  const v1 = lines.map((l) => l.split(':')).find((p) => p[1]?.split(',').includes('memory'));
  if (v1 && existsSync('/sys/fs/cgroup/memory')) return { base: join('/sys/fs/cgroup/memory', v1[2] ?? '/'), limitFile: 'memory.limit_in_bytes' };
  // cgroup v2 (unified) with the memory controller.
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 && existsSync('/sys/fs/cgroup/cgroup.controllers') && readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory')) {
    return { base: join('/sys/fs/cgroup', v2.slice(3)), limitFile: 'memory.max' };
  }
  return undefined;
}

export interface MemoryCgroup {
  path: string;
  /**
   * The command line that runs `file args` inside the cgroup: a shell writes
   * its own pid to `cgroup.procs`, then execs the command (so the sandbox is
   * capped before it runs a line of its own). Moving a process between
   * cgroups waits for an RCU grace period (5 to 20 ms, more under load); the
   * child waits for it, not the host's event loop.
   */
  wrap(file: string, args: string[]): [string, string[]];
  /** Removes the cgroup (after its process has exited). */
  remove(): void;
}

let serial = 0;
let swept = false;

/** Whether process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the cgroups that hosts which are gone left behind (a host killed
 * before its sandboxes' exits were seen). A cgroup is named after the host's
 * pid; one whose host still runs is left alone, and the kernel refuses to
 * remove one that still holds a process.
 */
function sweep(base: string): void {
  if (swept) return;
  swept = true;
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^wasmnet-.+-(\d+)-\d+$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    try {
      rmdirSync(join(base, name));
    } catch {
      // still holds a process, or gone
    }
  }
}

/** A new memory cgroup capped at `bytes`, for one sandbox process; undefined when the machine offers none. */
export function memoryCgroup(bytes: number, name: string): MemoryCgroup | undefined {
  const flavour = detect();
  if (!flavour) return undefined;
  sweep(flavour.base);
  const path = join(flavour.base, `wasmnet-${name.replace(/[^a-z0-9._-]/g, '_')}-${process.pid}-${++serial}`);
  try {
    mkdirSync(path);
    writeFileSync(join(path, flavour.limitFile), String(bytes));
    if (flavour.limitFile === 'memory.limit_in_bytes' && existsSync(join(path, 'memory.memsw.limit_in_bytes'))) {
      writeFileSync(join(path, 'memory.memsw.limit_in_bytes'), String(bytes));
    }
  } catch {
    try {
      rmdirSync(path);
    } catch {
      // it was never made
    }
    return undefined;
  }
  return {
    path,
    wrap: (file, args) => ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', join(path, 'cgroup.procs'), file, ...args]],
    remove() {
      try {
        rmdirSync(path);
      } catch {
        // still busy or gone
      }
    },
  };
}
