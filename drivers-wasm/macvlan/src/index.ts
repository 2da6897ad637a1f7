/// <reference path="../gen/macvlan-driver.d.ts" />
// The component's entry point (world wasmnet:macvlan/macvlan-driver): wires
// the WIT imports to the driver logic and exports the WIT interfaces. The
// componentize-js conventions are those of the bridge driver (see
// drivers-wasm/README.md): every export that returns a result goes through
// `guard`, so that no exception traps the instance.
import * as log from 'wasmnet:host/log@0.1.0';
import * as store from 'wasmnet:host/store@0.1.0';
import * as netlink from 'wasmnet:host/netlink@0.1.0';
import type * as DriverIface from 'wasmnet:driver/driver@0.1.0';
import type * as RegistrationIface from 'wasmnet:driver/registration@0.1.0';
import { MacvlanDriver, guard } from './macvlan.ts';

// Stateless apart from the injected capabilities: all state is in the store.
const macvlan = new MacvlanDriver({ log, store, netlink });

const g = <A extends unknown[], R>(op: string, f: (...args: A) => R) => guard(log, op, f);

export const driver: typeof DriverIface = {
  networkAllocate: g('network-allocate', (nid, options, v4, v6) => macvlan.networkAllocate(nid, options, v4, v6)),
  networkFree: g('network-free', (nid) => macvlan.networkFree(nid)),
  createNetwork: g('create-network', (_ctx, nid, options, _networkInfo, v4, v6) => macvlan.createNetwork(nid, options, v4, v6)),
  deleteNetwork: g('delete-network', (nid) => macvlan.deleteNetwork(nid)),
  createEndpoint: g('create-endpoint', (_ctx, nid, eid, interfaceInfo, options) => macvlan.createEndpoint(nid, eid, interfaceInfo, options)),
  deleteEndpoint: g('delete-endpoint', (nid, eid) => macvlan.deleteEndpoint(nid, eid)),
  endpointOperInfo: g('endpoint-oper-info', (nid, eid) => macvlan.endpointOperInfo(nid, eid)),
  join: g('join', (_ctx, nid, eid, sandboxKey, joinInfo, _epOptions, _sbOptions) => macvlan.join(nid, eid, sandboxKey, joinInfo)),
  leave: g('leave', (nid, eid) => macvlan.leave(nid, eid)),
  type: () => macvlan.type(),
  isBuiltIn: () => macvlan.isBuiltIn(),
};

export const registration: typeof RegistrationIface = {
  describe: () => macvlan.describe(),
};
