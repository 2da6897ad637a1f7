// Scheduling priority of sandbox processes. A sandbox process boots at a low
// priority, so that starting one (a new version during a hot swap, a restart
// after a crash) takes only CPU that the sandboxes serving calls do not need;
// once it is ready it is raised to the host's own priority. Linux applies
// setpriority(2) to one thread, so every thread of the process is raised.
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';

/** The nice value a sandbox process boots at (19 is the lowest priority). */
export const BOOT_NICE = 19;

// Only root (CAP_SYS_NICE) may raise a priority again; others boot sandboxes as they are.
const NICE = process.getuid?.() === 0 ? ['/usr/bin/nice', '/bin/nice'].find((f) => existsSync(f)) : undefined;

/** The command line that runs `file args` at the boot priority (unchanged where that could not be undone). */
export function atBootPriority(file: string, args: string[]): [string, string[]] {
  return NICE ? [NICE, ['-n', String(BOOT_NICE), file, ...args]] : [file, args];
}

/**
 * Raises every thread of process `pid` to the host's own priority. Returns
 * false where that is not allowed (raising a priority needs CAP_SYS_NICE) or
 * the process is gone; the process then keeps running at the boot priority.
 */
export function raiseToHostPriority(pid: number): boolean {
  const target = os.getPriority();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  let ok = true;
  for (const tid of tids) {
    try {
      os.setPriority(Number(tid), target);
    } catch {
      ok = false;
    }
  }
  return ok;
}
