// Starts wasmnet, whatever the runtime: opens the state store, the netlink
// backend and the engine, loads the driver, and serves the plugin protocol on
// `<socket-dir>/<name>.sock` through the runtime's listener (host/node or
// host/deno).
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { JcoEngine } from '../../runtime/engine/jco.ts';
import { loadDriver } from '../../runtime/driver-loader.ts';
import { RtNetlink } from '../../runtime/netlink/rtnetlink.ts';
import { SqliteStateStore } from '../../runtime/store/sqlite.ts';
import { createPluginApp } from './plugin-app.ts';

/** Listens on a unix socket; resolves once listening, returns a closer. */
export type UnixListener = (app: Hono, socketPath: string) => Promise<() => Promise<void>>;

export interface ServeConfig {
  socketDir: string;
  stateDir: string;
  /** Plugin name: the `--driver` value users give dockerd. */
  name: string;
  /** Driver component; defaults to the bundled bridge driver. */
  component: string;
  callTimeoutMs: number;
  logger: Logger;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const bundledBridge = join(root, 'drivers-wasm/bridge/build/bridge.wasm');

export interface Running {
  socketPath: string;
  close(): Promise<void>;
}

export async function serve(config: ServeConfig, listen: UnixListener): Promise<Running> {
  const { logger } = config;
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const store = new SqliteStateStore(join(config.stateDir, 'state.db'));
  const netlink = new RtNetlink();
  const engine = new JcoEngine(join(config.stateDir, 'cache', 'jco'));
  let driver;
  try {
    driver = await loadDriver({ engine, component: config.component, store, netlink, logger, host: { callTimeoutMs: config.callTimeoutMs } });
  } catch (e) {
    store.close();
    netlink.close();
    throw e;
  }
  const loaded = driver;
  const app = createPluginApp({ driver: () => loaded, logger });

  await mkdir(config.socketDir, { recursive: true });
  const socketPath = join(config.socketDir, `${config.name}.sock`);
  // A socket left by a previous run that ended uncleanly is replaced; any other file is not.
  const existing = await stat(socketPath).catch(() => undefined);
  if (existing && !existing.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  if (existing) await rm(socketPath);
  const closeListener = await listen(app, socketPath);
  // Only root (dockerd) may talk to the driver.
  await chmod(socketPath, 0o600);
  logger.info({ socket: socketPath, driver: loaded.description.name }, 'serving');

  return {
    socketPath,
    async close() {
      await closeListener();
      await rm(socketPath, { force: true });
      store.close();
      netlink.close();
    },
  };
}
