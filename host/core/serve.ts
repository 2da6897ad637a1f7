// Starts wasmnet, whatever the runtime: opens the state store, the netlink
// backend and the engine, checks the driver's grant, loads the driver, and
// serves the plugin protocol on `<socket-dir>/<name>.sock` and the admin API
// on `<state-dir>/admin.sock`, through the runtime's listener (host/node,
// host/deno).
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { createEngine, type EngineName } from '../../runtime/engine/select.ts';
import { loadDriver } from '../../runtime/driver-loader.ts';
import { RtNetlink } from '../../runtime/netlink/rtnetlink.ts';
import { NetlinkWorkers } from '../../runtime/netlink/workers.ts';
import { SqliteStateStore } from '../../runtime/store/sqlite.ts';
import { readPackage, type DriverPackage } from '../../runtime/grants.ts';
import { DriverRouter } from '../../runtime/registry/router.ts';
import { installVersion } from '../../runtime/registry/versions.ts';
import type { InstalledVersion } from '../../runtime/store/store.ts';
import { createPluginApp } from './plugin-app.ts';
import { createAdminApp } from './admin-app.ts';
import { defaultLimits, type SandboxLimits } from '../../runtime/sandbox/process-sandbox.ts';

/** Listens on a unix socket; resolves once listening, returns a closer. */
export type UnixListener = (app: Hono, socketPath: string) => Promise<() => Promise<void>>;

export interface ServeConfig {
  socketDir: string;
  stateDir: string;
  /** Plugin name: the `--driver` value users give dockerd. */
  name: string;
  pkg: DriverPackage;
  callTimeoutMs: number;
  /** Run the driver in a sandbox process (default) or in the host's thread. */
  isolation: 'process' | 'none';
  limits?: Partial<SandboxLimits>;
  /** Sandbox processes per driver version. */
  instances: number;
  /** The engine that runs drivers. */
  engine: EngineName;
  /** Where compiled drivers are cached (default `<state-dir>/cache`). */
  cacheDir?: string;
  logger: Logger;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const bundledBridge = join(root, 'drivers-wasm/bridge/build/bridge.wasm');

export const stateDbPath = (stateDir: string) => join(stateDir, 'state.db');
export const adminSocketPath = (stateDir: string) => join(stateDir, 'admin.sock');

export interface Running {
  socketPath: string;
  adminSocketPath: string;
  close(): Promise<void>;
}

/** Replaces a socket left by a run that ended uncleanly; refuses to replace anything else. */
async function clearSocket(path: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isSocket()) throw new Error(`${path} exists and is not a socket`);
  if (existing) await rm(path);
}

export async function serve(config: ServeConfig, state: SqliteStateStore, listen: UnixListener): Promise<Running> {
  const { logger } = config;
  const netlink = new RtNetlink();
  const cacheRoot = config.cacheDir ?? join(config.stateDir, 'cache');
  const engine = await createEngine(config.engine, cacheRoot, { memoryMaxBytes: config.limits?.memoryMaxBytes ?? defaultLimits.memoryMaxBytes, callTimeoutMs: config.callTimeoutMs });
  // Netlink operations of sandboxed drivers run on worker threads, so a slow one blocks nothing else.
  const workers = config.isolation === 'process' ? new NetlinkWorkers(Math.max(2, config.instances * 2)) : undefined;
  const closers: (() => Promise<void> | void)[] = [() => netlink.close(), () => workers?.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    // Packages read and verified by this host, by digest, so that switching back to a version does not read and hash it again.
    const packages = new Map<string, DriverPackage>([[config.pkg.digest, config.pkg]]);
    const packageOf = async (v: InstalledVersion): Promise<DriverPackage> => {
      const known = packages.get(v.digest);
      if (known) return known;
      const pkg = await readPackage(v.component, v.manifest);
      if (pkg.digest !== v.digest) throw new Error(`${v.component} no longer holds ${v.driver} ${v.version}: it hashes to ${pkg.digest}, not ${v.digest}`);
      // The few most recent only: each holds a whole component.
      if (packages.size >= 4) packages.delete(packages.keys().next().value!);
      packages.set(v.digest, pkg);
      return pkg;
    };
    const load = async (v: InstalledVersion) =>
      loadDriver({
        engine,
        pkg: await packageOf(v),
        state,
        netlink,
        logger,
        host: { callTimeoutMs: config.callTimeoutMs },
        isolation: config.isolation === 'process' ? { kind: 'process', cacheRoot, limits: config.limits, instances: config.instances, workers } : { kind: 'none' },
      });
    // The version that serves: the one made active by an earlier upgrade, if any, else the package given.
    const driverName = config.pkg.manifest.name;
    const given = await installVersion(config.stateDir, state.versions, config.pkg);
    const active = state.versions.active(driverName);
    const initial = active ?? given;
    if (active && active.digest !== given.digest) logger.info({ driver: driverName, version: active.version, digest: active.digest }, 'serving the version made active by an upgrade');
    const router = await DriverRouter.start({ driver: driverName, state, load, logger }, initial);
    closers.push(() => router.close());
    const app = createPluginApp({ route: router, logger });

    const socketPath = join(config.socketDir, `${config.name}.sock`);
    await mkdir(config.socketDir, { recursive: true });
    await clearSocket(socketPath);
    const closePlugin = await listen(app, socketPath);
    closers.push(async () => {
      await closePlugin();
      await rm(socketPath, { force: true });
    });
    // Only root (dockerd) may talk to the driver, and only root administers.
    await chmod(socketPath, 0o600);

    const adminPath = adminSocketPath(config.stateDir);
    await clearSocket(adminPath);
    const closeAdmin = await listen(createAdminApp(state, { stateDir: config.stateDir, routers: new Map([[driverName, router]]) }), adminPath);
    closers.push(async () => {
      await closeAdmin();
      await rm(adminPath, { force: true });
    });
    await chmod(adminPath, 0o600);

    logger.info({ socket: socketPath, admin: adminPath, driver: driverName, version: router.activeVersion.version }, 'serving');
    return { socketPath, adminSocketPath: adminPath, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
