// Loads a driver: prepares its component on the engine, gives it exactly the
// host interfaces its grant allows (the capability broker, one module per WIT
// interface), starts it and checks that it is who its manifest says.
import type { Logger } from 'pino';
import { callbacksImport } from './callbacks.ts';
import { CONTRACT_VERSION, type DriverImports } from './contract.ts';
import { defaultCallTimeoutMs, DriverHost, type DriverHostOptions } from './driver-host.ts';
import type { EngineName } from './engine/select.ts';
import { InProcessInvoker, type Invoker } from './invoker.ts';
import { type HostImports, ProcessSandbox, type SandboxLimits } from './sandbox/process-sandbox.ts';
import { SandboxPool } from './sandbox/pool.ts';
import type { NetlinkWorkers } from './netlink/workers.ts';
import type { Engine } from './engine/engine.ts';
import { logImport } from './broker/log.ts';
import { storeImport } from './broker/store.ts';
import { netlinkImport } from './broker/netlink.ts';
import type { NetlinkBackend } from './netlink/backend.ts';
import type { HostState } from './store/store.ts';
import { type DriverPackage, requireGrant } from './grants.ts';
import { witName } from './manifest.ts';

export interface LoadDriverOptions {
  engine: Engine;
  pkg: DriverPackage;
  state: HostState;
  netlink: NetlinkBackend;
  logger: Logger;
  host?: Partial<Pick<DriverHostOptions, 'callTimeoutMs'>>;
  /**
   * Where the driver runs: in a sandbox process of its own (the default for
   * serving), or in this thread (`none`: for tests of the host alone).
   */
  isolation?:
    | {
        kind: 'process';
        /** The host's cache root (each engine keeps its compiled components under it). */
        cacheRoot: string;
        limits?: Partial<SandboxLimits>;
        /** Sandbox processes per version (calls on different endpoints run side by side). */
        instances?: number;
        /** Netlink operations off the host's thread. */
        workers?: NetlinkWorkers;
      }
    | { kind: 'none' };
}

export async function loadDriver(opts: LoadDriverOptions): Promise<DriverHost> {
  const { pkg, state } = opts;
  const manifest = requireGrant(state.grants, pkg);
  const who = { driver: manifest.name, version: manifest.version };
  const logger = opts.logger.child({ driver: who.driver, version: who.version });
  const caps = manifest.capabilities;

  // Only what was granted is offered; the contract's own interfaces always are.
  const offered: Record<string, unknown> = {
    [`wasmnet:driver/callbacks@${CONTRACT_VERSION}`]: callbacksImport,
    [`wasmnet:driver/types@${CONTRACT_VERSION}`]: {},
  };
  if (caps.log) offered[witName('log')] = logImport(logger);
  if (caps.store) offered[witName('store')] = storeImport(state.forDriver(who.driver));
  const isolation = opts.isolation ?? { kind: 'none' };
  if (caps.netlink) {
    // A driver in the host's own thread needs synchronous answers; one in a sandbox waits for them anyway.
    const workers = isolation.kind === 'process' ? isolation.workers : undefined;
    offered[witName('netlink')] = netlinkImport({ backend: opts.netlink, workers, grant: caps.netlink, who, ledger: state.ledger, scopes: state.scopes, audit: state.audit, logger });
  }
  const missing = pkg.imports.filter((i) => !(i in offered));
  if (missing.length > 0) throw new Error(`driver "${who.driver}" imports ${missing.join(', ')}, which was not granted`);

  const preparing = performance.now();
  const prepared = await opts.engine.prepare({ bytes: pkg.bytes, digest: pkg.digest });
  const prepareMs = Math.round(performance.now() - preparing);
  // A first compile (wasmtime: tens of seconds for a JavaScript driver) is worth telling the operator about.
  if (prepareMs >= 1000) logger.info({ digest: pkg.digest, engine: opts.engine.name, ms: prepareMs }, 'driver compiled; later starts load it from the cache');
  const imports = Object.fromEntries(prepared.imports.map((i) => [i, offered[i]])) as unknown as DriverImports;
  let invoker: Invoker;
  if (isolation.kind === 'process') {
    const make = () =>
      new ProcessSandbox({
        driver: who.driver,
        prepared,
        engine: opts.engine.name as EngineName,
        cacheRoot: isolation.cacheRoot,
        callTimeoutMs: opts.host?.callTimeoutMs ?? defaultCallTimeoutMs,
        imports: imports as unknown as HostImports,
        logger,
        limits: isolation.limits,
      });
    const pool = new SandboxPool(Array.from({ length: Math.max(1, isolation.instances ?? 1) }, make));
    await pool.start();
    invoker = pool;
  } else {
    invoker = new InProcessInvoker(await opts.engine.instantiate(prepared, imports));
  }
  let host: DriverHost;
  try {
    host = await DriverHost.start(prepared, invoker, { ...opts.host, scopes: { driver: who.driver, store: state.scopes }, afterCall: () => state.audit.flush() });
    if (host.description.name !== who.driver) {
      throw new Error(`driver registered as "${host.description.name}", but its manifest names it "${who.driver}"`);
    }
  } catch (e) {
    // A driver that does not start properly leaves no sandbox behind.
    await invoker.close();
    throw e;
  }
  logger.info({ digest: pkg.digest, engine: opts.engine.name }, 'driver loaded');
  return host;
}
