import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { fastSpawnAvailable, spawnSandboxProcess, type SandboxProcess } from './spawn.ts';

const text = (r: Readable) => new Promise<string>((resolve) => {
  let s = '';
  r.setEncoding('utf8');
  r.on('data', (d: string) => (s += d));
  r.on('end', () => resolve(s));
});
const exited = (p: SandboxProcess) => new Promise<[number | null, string | null]>((resolve) => p.once('exit', (code, signal) => resolve([code, signal])));

test('posix_spawn is the way sandboxes start on Linux', () => {
  assert.equal(fastSpawnAvailable, process.platform === 'linux');
});

test('a spawned process gets its pipes, environment and directory, and its exit code is reported', async () => {
  const p = spawnSandboxProcess('/bin/sh', ['-c', 'read x; echo "got $x in $(pwd) with $FOO"; echo oops >&2; exit 3'], { env: { FOO: 'bar', PATH: '/usr/bin:/bin' }, cwd: '/tmp' });
  assert.ok(p.pid && p.pid > 0);
  const out = text(p.stdout);
  const err = text(p.stderr);
  const done = exited(p);
  p.stdin.write('hello\n');
  assert.equal(await out, 'got hello in /tmp with bar\n');
  assert.equal(await err, 'oops\n');
  assert.deepEqual(await done, [3, null]);
  assert.equal(p.exitCode, 3);
});

test('a killed process is reaped and reported with its signal', async () => {
  const p = spawnSandboxProcess('/bin/sleep', ['30'], { env: {}, cwd: '/' });
  p.stdout.resume();
  p.stderr.resume();
  const done = exited(p);
  assert.equal(p.exitCode, null, 'running');
  p.kill('SIGKILL');
  assert.deepEqual(await done, [null, 'SIGKILL']);
  assert.notEqual(p.exitCode, null, 'no longer running');
});

test('a command that cannot be run fails to start or exits at once, and leaves no descriptor behind', async () => {
  const before = (await import('node:fs')).readdirSync('/proc/self/fd').length;
  try {
    const p = spawnSandboxProcess('/nonexistent/binary', [], { env: {}, cwd: '/' });
    p.stdout.resume();
    p.stderr.resume();
    const [code] = await exited(p);
    assert.notEqual(code, 0);
  } catch (e) {
    assert.match((e as Error).message, /cannot start|ENOENT|posix_spawn/);
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.ok((await import('node:fs')).readdirSync('/proc/self/fd').length <= before + 1, 'pipes closed');
});
