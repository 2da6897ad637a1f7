// The Hono app that speaks Docker's remote network-driver protocol: one POST
// route per method, dockerd's exact semantics (no Content-Type, 200 with a
// JSON body on success, {"Err": "..."} on failure, 404 for unknown methods),
// each body validated by its valibot schema and handed to the driver.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import { DriverCallError } from '../../runtime/contract.ts';
import type { DriverDescription, DriverHost } from '../../runtime/driver-host.ts';
import { methods, parseRequest, ProtocolError, type Method, type Request } from './schemas.ts';
import { createEndpointResponse, fromOptions, fromStringMap, joinResponse, toIpamData, toOptions, toStringMap } from './mapping.ts';

/** Which driver (version) serves a call: the version router, or one driver. */
export interface Route {
  readonly description: DriverDescription;
  call<T>(method: string, nid: string | undefined, fn: (host: DriverHost) => Promise<T>): Promise<T>;
}

/** A route to one driver, always the same. */
export function singleRoute(host: DriverHost): Route {
  return { description: host.description, call: (_method, _nid, fn) => fn(host) };
}

export interface PluginAppOptions {
  route: Route;
  logger: Logger;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
}

export const defaultMaxBodyBytes = 1024 * 1024;

type Handler<M extends Method> = (driver: DriverHost, req: Request<M>) => Promise<object>;

/** Methods whose unknown IDs dockerd ignores anyway: a not-found from the driver answers {}. */
const idempotentDeletes = new Set<Method>(['DeleteNetwork', 'DeleteEndpoint', 'Leave', 'FreeNetwork', 'RevokeExternalConnectivity']);

const handlers: { [M in Method]: Handler<M> } = {
  GwAllocCheck: async (d, r) => {
    const skip = await d.getSkipGwAlloc(toOptions(r.Options));
    return { SkipIPv4: skip.skipIpv4, SkipIPv6: skip.skipIpv6 };
  },
  CreateNetwork: async (d, r) => {
    await d.createNetwork(r.NetworkID, toOptions(r.Options), toIpamData(r.IPv4Data), toIpamData(r.IPv6Data));
    return {};
  },
  DeleteNetwork: async (d, r) => {
    await d.deleteNetwork(r.NetworkID);
    return {};
  },
  CreateEndpoint: async (d, r) => {
    const i = r.Interface ?? { Address: '', AddressIPv6: '', MacAddress: '' };
    const set = await d.createEndpoint(r.NetworkID, r.EndpointID, { address: i.Address, addressIpv6: i.AddressIPv6, macAddress: i.MacAddress }, toOptions(r.Options));
    return createEndpointResponse(set);
  },
  EndpointOperInfo: async (d, r) => ({ Value: fromOptions(await d.endpointOperInfo(r.NetworkID, r.EndpointID)) }),
  DeleteEndpoint: async (d, r) => {
    await d.deleteEndpoint(r.NetworkID, r.EndpointID);
    return {};
  },
  // dockerd sends the sandbox options only; the endpoint options are not part of Join on the wire.
  Join: async (d, r) => joinResponse(await d.join(r.NetworkID, r.EndpointID, r.SandboxKey, [], toOptions(r.Options))),
  Leave: async (d, r) => {
    await d.leave(r.NetworkID, r.EndpointID);
    return {};
  },
  // On the wire, Program means "this endpoint is now the sandbox's gateway"
  // and Revoke means "it no longer is"; the Go interface carries gateway IDs.
  ProgramExternalConnectivity: async (d, r) => {
    await d.programExternalConnectivity(r.NetworkID, r.EndpointID, r.EndpointID, r.EndpointID);
    return {};
  },
  RevokeExternalConnectivity: async (d, r) => {
    await d.programExternalConnectivity(r.NetworkID, r.EndpointID, '', '');
    return {};
  },
  // Node discovery (swarm) carries nothing a local driver uses.
  DiscoverNew: async () => ({}),
  DiscoverDelete: async () => ({}),
  AllocateNetwork: async (d, r) => ({ Options: fromStringMap(await d.networkAllocate(r.NetworkID, toStringMap(r.Options), toIpamData(r.IPv4Data), toIpamData(r.IPv6Data))) }),
  FreeNetwork: async (d, r) => {
    await d.networkFree(r.NetworkID);
    return {};
  },
};

/** Reads a body whatever its Content-Type (dockerd sends none); empty means {}. */
async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError('request body is not JSON');
  }
}

export function createPluginApp(options: PluginAppOptions): Hono {
  const { logger } = options;
  const maxSize = options.maxBodyBytes ?? defaultMaxBodyBytes;
  const app = new Hono();

  app.use(
    '*',
    bodyLimit({
      maxSize,
      onError: (c) => c.json({ Err: `request body over ${maxSize} bytes` }, 413),
    }),
  );

  app.post('/Plugin.Activate', (c) => c.json({ Implements: ['NetworkDriver'] }));

  app.post('/NetworkDriver.GetCapabilities', (c) => {
    const d = options.route.description;
    return c.json({ Scope: d.capability.dataScope, ConnectivityScope: d.capability.connectivityScope, GwAllocChecker: d.gwAllocChecker });
  });

  const handle = async (method: Method, c: Context) => {
    const { description } = options.route;
    if (method === 'GwAllocCheck' && !description.gwAllocChecker) {
      return c.json({ Err: `driver ${description.name} does not check gateway allocation` }, 404);
    }
    const started = performance.now();
    try {
      const req = parseRequest(method, await readJson(c));
      const nid = 'NetworkID' in req ? (req.NetworkID as string) : undefined;
      const body = await options.route.call(method, nid, (driver) => (handlers[method] as Handler<Method>)(driver, req));
      logger.info({ method, ms: +(performance.now() - started).toFixed(2) }, 'call');
      return c.json(body, 200);
    } catch (e) {
      const ms = +(performance.now() - started).toFixed(2);
      if (e instanceof DriverCallError && e.kind === 'not-found' && idempotentDeletes.has(method)) {
        logger.info({ method, ms, err: e.message }, 'unknown id on delete: answered {}');
        return c.json({}, 200);
      }
      const status = e instanceof ProtocolError ? 400 : 200;
      const message = e instanceof ProtocolError || e instanceof DriverCallError ? e.message : `internal error: ${(e as Error)?.message ?? e}`;
      logger.warn({ method, ms, err: message }, 'call failed');
      return c.json({ Err: message }, status);
    }
  };
  for (const method of methods) app.post(`/NetworkDriver.${method}`, (c) => handle(method, c));

  app.notFound((c) => c.json({ Err: `unknown method ${c.req.method} ${c.req.path}` }, 404));
  app.onError((e, c) => {
    logger.error({ err: e.message }, 'unhandled error');
    return c.json({ Err: `internal error: ${e.message}` }, 500);
  });
  return app;
}
