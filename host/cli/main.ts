// The wasmnet command line. Runtime-agnostic: host/node/main.ts and
// host/deno/main.ts call it with their own unix-socket listener.
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import process from 'node:process';
import { Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { adminSocketPath, bundledBridge, serve, stateDbPath, type UnixListener } from '../core/serve.ts';
import { adminRequest } from './admin-client.ts';
import { installVersion } from '../../runtime/registry/versions.ts';
import { defaultLimits } from '../../runtime/sandbox/process-sandbox.ts';
import { createEngine, defaultEngine, engineNames, type EngineName } from '../../runtime/engine/select.ts';
import { join } from 'node:path';
import { defaultCallTimeoutMs } from '../../runtime/driver-host.ts';
import { grantPackage, privilegePrompt, readPackage, type DriverPackage } from '../../runtime/grants.ts';
import { describePrivileges, parseManifest } from '../../runtime/manifest.ts';
import { SqliteStateStore } from '../../runtime/store/sqlite.ts';

const defaultStateDir = '/var/lib/wasmnet';

function positiveInt(max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) throw new InvalidArgumentError(`expected a whole number from 1 to ${max}`);
    return n;
  };
}

function pluginName(value: string) {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(value)) throw new InvalidArgumentError('expected lowercase letters, digits, ".", "_" or "-" (up to 63)');
  return value;
}

function isoTime(value: string) {
  if (Number.isNaN(Date.parse(value))) throw new InvalidArgumentError('expected a time such as 2026-11-28T05:00:00Z');
  return new Date(value).toISOString();
}

function openState(stateDir: string): SqliteStateStore {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return new SqliteStateStore(stateDbPath(stateDir));
}

class CliError extends Error {}

/** Whether this component already has a grant for exactly this manifest (a changed manifest is asked again). */
function isGranted(state: SqliteStateStore, pkg: DriverPackage): boolean {
  const grant = state.grants.get(pkg.digest);
  return grant !== undefined && grant.manifest === JSON.stringify(pkg.manifest);
}

/** Shows what the package asks for and records the grant if the operator agrees (or --grant-all). */
async function grantInteractively(state: SqliteStateStore, pkg: DriverPackage, grantAll: boolean): Promise<void> {
  console.log(privilegePrompt(pkg));
  let yes = grantAll;
  if (!grantAll) {
    if (!process.stdin.isTTY) throw new CliError('not granted: no terminal to ask on; review the privileges above and pass --grant-all to grant them');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Do you grant the above permissions? [y/N] ');
    rl.close();
    yes = /^y(es)?$/i.test(answer.trim());
  }
  if (!yes) throw new CliError('not granted');
  const g = grantPackage(state.grants, pkg);
  console.log(`Granted ${g.driver} ${g.version} (${g.digest})${grantAll ? ' (--grant-all)' : ''}.`);
}

const stateDirOption = () => new Option('--state-dir <dir>', 'where state (SQLite), grants, the audit log and compiled drivers are kept').default(defaultStateDir);
const engineOption = () =>
  new Option('--engine <engine>', 'the engine that runs drivers: wasmtime (native) or jco (JavaScript)').choices(engineNames).default(defaultEngine).env('WASMNET_ENGINE');
const cacheDirOption = () =>
  new Option('--cache-dir <dir>', 'where compiled drivers are kept (default <state-dir>/cache); root only: what is there runs in the sandbox').env('WASMNET_CACHE_DIR');

/** Compiles a package for the engine now, so that serving or switching to it later does not wait for that. */
async function precompile(pkg: DriverPackage, engine: EngineName, stateDir: string, cacheDir: string | undefined): Promise<void> {
  const started = performance.now();
  const e = await createEngine(engine, cacheDir ?? join(stateDir, 'cache'), { memoryMaxBytes: defaultLimits.memoryMaxBytes, callTimeoutMs: defaultCallTimeoutMs });
  await e.prepare({ bytes: pkg.bytes, digest: pkg.digest });
  console.log(`Compiled for ${engine} in ${Math.round(performance.now() - started)} ms.`);
}

export async function main(argv: string[], listen: UnixListener): Promise<void> {
  const program = new Command('wasmnet')
    .description('Docker network drivers as sandboxed WebAssembly components')
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode));

  program
    .command('serve')
    .description('serve a driver to dockerd on a plugin socket (the bundled bridge driver by default)')
    .option('--socket-dir <dir>', 'directory dockerd discovers plugin sockets in', '/run/docker/plugins')
    .addOption(stateDirOption())
    .option('--name <name>', 'plugin name: the socket is <socket-dir>/<name>.sock and users pass it to `docker network create -d`', pluginName, 'wasmnet-bridge')
    .option('--driver <file>', 'driver component (.wasm) to serve; its manifest is <file without .wasm>.manifest.json', bundledBridge)
    .option('--manifest <file>', 'the driver manifest, if not beside the component')
    .option('--grant-all', 'grant what the driver asks for without asking (for scripts)', false)
    .option('--call-timeout <ms>', 'deadline of one driver call, in milliseconds; past it the caller gets an error and the driver is restarted', positiveInt(3_600_000), defaultCallTimeoutMs)
    .option('--memory-max <MiB>', "cap on the driver's linear memory", positiveInt(16_384), defaultLimits.memoryMaxBytes / 1024 / 1024)
    .option('--heap-max <MiB>', "cap on the JavaScript heap of the driver's sandbox process", positiveInt(16_384), defaultLimits.heapMaxMb)
    .option('--max-return <KiB>', 'largest value a driver call may return', positiveInt(1024 * 1024), defaultLimits.maxReturnBytes / 1024)
    .option('--max-queued-calls <n>', 'calls waiting for the driver beyond which new calls are refused', positiveInt(100_000), defaultLimits.maxQueuedCalls)
    .addOption(engineOption())
    .addOption(cacheDirOption())
    .option('--instances <n>', 'sandbox processes per driver version: calls on different endpoints run side by side', positiveInt(64), 2)
    .addOption(new Option('--isolation <kind>', 'run the driver in a sandbox process, or in the host itself (none: for debugging only)').choices(['process', 'none']).default('process'))
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: {
      socketDir: string;
      stateDir: string;
      name: string;
      driver: string;
      manifest?: string;
      grantAll: boolean;
      callTimeout: number;
      memoryMax: number;
      heapMax: number;
      maxReturn: number;
      maxQueuedCalls: number;
      instances: number;
      engine: EngineName;
      cacheDir?: string;
      isolation: 'process' | 'none';
      logLevel: string;
    }) => {
      if (!['debug', 'info', 'warn', 'error'].includes(opts.logLevel)) throw new CliError('--log-level: expected debug, info, warn or error');
      const logger = pino({ level: opts.logLevel, base: { plugin: opts.name } });
      const state = openState(opts.stateDir);
      let running;
      try {
        const pkg = await readPackage(opts.driver, opts.manifest);
        if (!isGranted(state, pkg)) await grantInteractively(state, pkg, opts.grantAll);
        const limits = { memoryMaxBytes: opts.memoryMax * 1024 * 1024, heapMaxMb: opts.heapMax, maxReturnBytes: opts.maxReturn * 1024, maxQueuedCalls: opts.maxQueuedCalls };
        running = await serve(
          { socketDir: opts.socketDir, stateDir: opts.stateDir, name: opts.name, pkg, callTimeoutMs: opts.callTimeout, isolation: opts.isolation, limits, instances: opts.instances, engine: opts.engine, cacheDir: opts.cacheDir, logger },
          state,
          listen,
        );
      } catch (e) {
        state.close();
        throw e;
      }
      console.log(`wasmnet: serving ${opts.name} on ${running.socketPath} (admin API on ${running.adminSocketPath})`);
      const stop = async (signal: string) => {
        logger.info({ signal }, 'stopping');
        await running.close();
        state.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop('SIGTERM'));
      process.once('SIGINT', () => void stop('SIGINT'));
    });

  program
    .command('install')
    .description('review what a driver asks for, grant it, like `docker plugin install`, and install it beside the other versions')
    .argument('<file>', 'driver component (.wasm)')
    .option('--manifest <file>', 'the driver manifest, if not beside the component')
    .option('--grant-all', 'grant without asking (for scripts)', false)
    .addOption(stateDirOption())
    .addOption(engineOption())
    .addOption(cacheDirOption())
    .action(async (file: string, opts: { manifest?: string; grantAll: boolean; stateDir: string; engine: EngineName; cacheDir?: string }) => {
      const state = openState(opts.stateDir);
      try {
        const pkg = await readPackage(file, opts.manifest);
        if (isGranted(state, pkg)) console.log(`${pkg.manifest.name} ${pkg.manifest.version} (${pkg.digest}) is already granted.`);
        else await grantInteractively(state, pkg, opts.grantAll);
        // Installed side by side with the other versions; `wasmnet upgrade` makes it active.
        const v = await installVersion(opts.stateDir, state.versions, pkg);
        console.log(`Installed ${v.driver} ${v.version} (${v.digest}).`);
        await precompile(pkg, opts.engine, opts.stateDir, opts.cacheDir);
      } finally {
        state.close();
      }
    });

  program
    .command('grants')
    .description('show the grants (of one driver, if named), or revoke one')
    .argument('[driver]', 'driver name')
    .option('--revoke <digest>', 'revoke the grant of this component digest')
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action((driver: string | undefined, opts: { revoke?: string; json: boolean; stateDir: string }) => {
      const state = openState(opts.stateDir);
      try {
        if (opts.revoke !== undefined) {
          if (!/^sha256:[0-9a-f]{64}$/.test(opts.revoke)) throw new CliError('--revoke: expected a digest such as sha256:<64 hex digits>');
          if (!state.grants.revoke(opts.revoke)) throw new CliError(`no grant for ${opts.revoke}`);
          console.log(`Revoked ${opts.revoke}. A running host keeps the driver it loaded until it restarts.`);
          return;
        }
        const grants = state.grants.list(driver);
        if (opts.json) {
          console.log(JSON.stringify(grants.map((g) => ({ ...g, manifest: JSON.parse(g.manifest) })), null, 2));
          return;
        }
        if (grants.length === 0) console.log(driver ? `no grants for ${driver}` : 'no grants');
        for (const g of grants) {
          console.log(`${g.driver} ${g.version} ${g.digest} granted ${g.grantedAt}`);
          for (const line of describePrivileges(parseManifest(JSON.parse(g.manifest), g.digest))) console.log(`  - ${line}`);
        }
      } finally {
        state.close();
      }
    });

  program
    .command('audit')
    .description('show the audit log of privileged calls, newest first')
    .option('--driver <name>', 'only this driver')
    .option('--op <op>', 'only this operation, e.g. add-address')
    .addOption(new Option('--denied', 'only refused calls').conflicts('allowed'))
    .addOption(new Option('--allowed', 'only allowed calls').conflicts('denied'))
    .option('--since <time>', 'only calls at or after this time (ISO 8601)', isoTime)
    .option('--limit <n>', 'at most this many entries', positiveInt(100_000), 50)
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action((opts: { driver?: string; op?: string; denied?: boolean; allowed?: boolean; since?: string; limit: number; json: boolean; stateDir: string }) => {
      const state = openState(opts.stateDir);
      try {
        const entries = state.audit.query({
          driver: opts.driver,
          op: opts.op,
          allowed: opts.denied ? false : opts.allowed ? true : undefined,
          since: opts.since,
          limit: opts.limit,
        });
        if (opts.json) {
          console.log(JSON.stringify(entries, null, 2));
          return;
        }
        for (const e of entries) {
          const outcome = e.allowed ? (e.errno !== undefined ? `kernel errno ${e.errno}` : e.error ? 'failed' : 'ok') : 'DENIED';
          console.log(`${e.time} ${e.driver}@${e.version} ${e.op} ${JSON.stringify(e.args)} ${outcome}${e.error ? `: ${e.error}` : ''} (${e.durationMs} ms)`);
        }
        if (entries.length === 0) console.log('no matching entries');
      } finally {
        state.close();
      }
    });

  program
    .command('drivers')
    .description('list the installed driver versions and which one is active')
    .argument('[driver]', 'driver name')
    .option('--json', 'print JSON', false)
    .addOption(stateDirOption())
    .action((driver: string | undefined, opts: { json: boolean; stateDir: string }) => {
      const state = openState(opts.stateDir);
      try {
        const versions = state.versions.list(driver);
        if (opts.json) {
          console.log(JSON.stringify(versions, null, 2));
          return;
        }
        if (versions.length === 0) console.log(driver ? `no versions of ${driver}` : 'no drivers installed');
        for (const v of versions) console.log(`${v.active ? '*' : ' '} ${v.driver} ${v.version} ${v.digest} installed ${v.installedAt}`);
      } finally {
        state.close();
      }
    });

  program
    .command('upgrade')
    .description('make another version of a driver active, between two calls, without stopping the host')
    .argument('<driver>', 'driver name')
    .argument('<target>', 'a component file (.wasm), or an installed version (number or digest)')
    .option('--manifest <file>', 'the manifest, if not beside the component')
    .addOption(new Option('--strategy <strategy>', 'all: every call goes to the new version; new-networks: networks made before stay on the old one').choices(['all', 'new-networks']).default('all'))
    .option('--grant-all', 'grant what the new version asks for without asking (for scripts)', false)
    .addOption(stateDirOption())
    .addOption(engineOption())
    .addOption(cacheDirOption())
    .action(async (driver: string, target: string, opts: { manifest?: string; strategy: string; grantAll: boolean; stateDir: string; engine: EngineName; cacheDir?: string }) => {
      const state = openState(opts.stateDir);
      try {
        const installed = state.versions.list(driver).find((v) => v.version === target || v.digest === target);
        if (!installed) {
          const pkg = await readPackage(target, opts.manifest);
          if (pkg.manifest.name !== driver) throw new CliError(`${target} is driver ${pkg.manifest.name}, not ${driver}`);
          if (!isGranted(state, pkg)) await grantInteractively(state, pkg, opts.grantAll);
          await precompile(pkg, opts.engine, opts.stateDir, opts.cacheDir);
        }
      } finally {
        state.close();
      }
      const r = await adminRequest(adminSocketPath(opts.stateDir), 'POST', `/v1/drivers/${encodeURIComponent(driver)}/upgrade`, { target, manifest: opts.manifest, strategy: opts.strategy });
      if (r.status !== 200) throw new CliError(`upgrade refused: ${(r.json as { error?: string }).error ?? JSON.stringify(r.json)}`);
      const rep = r.json as { from: string; to: string; strategy: string; migrated: boolean; ms: number };
      console.log(`${driver}: ${rep.from} -> ${rep.to} (strategy ${rep.strategy}${rep.migrated ? ', store migrated' : ''}) in ${rep.ms} ms`);
    });

  program
    .command('rollback')
    .description('make the previously active version of a driver active again')
    .argument('<driver>', 'driver name')
    .addOption(stateDirOption())
    .action(async (driver: string, opts: { stateDir: string }) => {
      const r = await adminRequest(adminSocketPath(opts.stateDir), 'POST', `/v1/drivers/${encodeURIComponent(driver)}/rollback`);
      if (r.status !== 200) throw new CliError(`rollback refused: ${(r.json as { error?: string }).error ?? JSON.stringify(r.json)}`);
      const rep = r.json as { from: string; to: string; ms: number };
      console.log(`${driver}: rolled back ${rep.from} -> ${rep.to} in ${rep.ms} ms`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    console.error(`wasmnet: ${(e as Error).message}`);
    process.exit(1);
  }
}
