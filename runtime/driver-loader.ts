// Loads a driver component: reads and digests it, prepares it on the engine,
// checks that it imports nothing the host does not offer, builds its imports
// (the capability broker, one module per WIT interface) and starts it.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { callbacksImport } from './callbacks.ts';
import { CONTRACT_VERSION, type DriverImports } from './contract.ts';
import { DriverHost, type DriverHostOptions } from './driver-host.ts';
import { digestOf, type Engine } from './engine/engine.ts';
import { logImport } from './broker/log.ts';
import { storeImport } from './broker/store.ts';
import { netlinkImport } from './broker/netlink.ts';
import type { NetlinkBackend } from './netlink/backend.ts';
import type { StateStore } from './store/store.ts';

export interface LoadDriverOptions {
  engine: Engine;
  /** Path of the component (.wasm). */
  component: string;
  store: StateStore;
  netlink: NetlinkBackend;
  logger: Logger;
  host?: Partial<DriverHostOptions>;
}

export async function loadDriver(opts: LoadDriverOptions): Promise<DriverHost> {
  const bytes = await readFile(opts.component).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read driver component ${opts.component}: ${e.code === 'ENOENT' ? 'no such file (build the drivers with `npm run build`)' : e.message}`);
  });
  const digest = await digestOf(bytes);
  const prepared = await opts.engine.prepare({ bytes, digest });

  // The store key space is the digest-independent driver name, which is only
  // known once the driver describes itself; the broker therefore binds lazily.
  let kvName: string | undefined;
  const kv = () => {
    if (!kvName) throw new Error('store used before the driver registered');
    return opts.store.forDriver(kvName);
  };
  const logger = opts.logger.child({ driver: digest.slice(7, 19) });
  const offered: Record<string, unknown> = {
    [`wasmnet:driver/callbacks@${CONTRACT_VERSION}`]: callbacksImport,
    [`wasmnet:driver/types@${CONTRACT_VERSION}`]: {},
    [`wasmnet:host/log@${CONTRACT_VERSION}`]: logImport(logger),
    [`wasmnet:host/store@${CONTRACT_VERSION}`]: {
      get: (k: string) => storeImport(kv()).get(k),
      set: (k: string, v: string) => storeImport(kv()).set(k, v),
      delete: (k: string) => storeImport(kv()).delete(k),
      entries: (p: string) => storeImport(kv()).entries(p),
    },
    [`wasmnet:host/netlink@${CONTRACT_VERSION}`]: netlinkImport(opts.netlink, logger),
  };
  const unknown = prepared.imports.filter((i) => !(i in offered));
  if (unknown.length > 0) {
    throw new Error(`driver component ${digest} imports what this host does not offer: ${unknown.join(', ')}`);
  }
  const imports = Object.fromEntries(prepared.imports.map((i) => [i, offered[i]])) as unknown as DriverImports;
  const instance = await opts.engine.instantiate(prepared, imports);
  const host = await DriverHost.start(prepared, instance, opts.host);
  kvName = host.description.name;
  logger.info({ name: host.description.name, digest, engine: opts.engine.name }, 'driver loaded');
  return host;
}
