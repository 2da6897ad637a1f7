import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';
import { atBootPriority, BOOT_NICE, raiseToHostPriority } from './priority.ts';
import { spawnSandboxProcess } from './spawn.ts';

const notRoot = process.getuid?.() !== 0 ? 'needs root (raising a priority needs CAP_SYS_NICE)' : false;

test('a sandbox boots at nice 19 and every one of its threads is raised to the host priority', { skip: notRoot }, async () => {
  const [file, args] = atBootPriority('/bin/sleep', ['30']);
  const p = spawnSandboxProcess(file, args, { env: {}, cwd: '/' });
  p.stdout.resume();
  p.stderr.resume();
  try {
    // nice execs sleep in the same process; wait for the exec.
    for (let i = 0; i < 100 && os.getPriority(p.pid!) !== BOOT_NICE; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(os.getPriority(p.pid!), BOOT_NICE);
    assert.equal(raiseToHostPriority(p.pid!), true);
    for (const tid of readdirSync(`/proc/${p.pid}/task`)) assert.equal(os.getPriority(Number(tid)), os.getPriority());
  } finally {
    p.kill('SIGKILL');
  }
});

test('raising a process that is gone says so', () => {
  assert.equal(raiseToHostPriority(2 ** 22 + 12345), false);
});
