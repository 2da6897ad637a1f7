/// <reference path="../gen/bridge-driver.d.ts" />
// The component's entry point (world wasmnet:bridge/bridge-driver): wires the
// WIT imports to the driver logic and exports the WIT interfaces.
//
// componentize-js conventions (checked against its generated glue, 0.23.0):
// - an exported interface is a module export named after the interface in
//   camelCase (`driver`, `registration`, `extConner`), or by its full name;
// - an export returning result<T, E> returns T for ok; to return err(E) it
//   throws a value with an own `payload` property holding E (or throws E
//   itself when E is not an Error). Any other exception (a plain Error, a
//   TypeError, a string) traps the instance, which then refuses every later
//   call, so every export that returns a result goes through `guard`;
// - a host import returning err(E) throws a ComponentError whose `payload`
//   is E (bridge.ts `errorPayload`); inside the component it is not
//   `instanceof Error`.
import * as log from 'wasmnet:host/log@0.1.0';
import * as store from 'wasmnet:host/store@0.1.0';
import * as netlink from 'wasmnet:host/netlink@0.1.0';
import type * as DriverIface from 'wasmnet:driver/driver@0.1.0';
import type * as RegistrationIface from 'wasmnet:driver/registration@0.1.0';
import type * as ExtConnerIface from 'wasmnet:driver/ext-conner@0.1.0';
import { BridgeDriver, guard } from './bridge.ts';

// Stateless apart from the injected capabilities: all state is in the store.
const bridge = new BridgeDriver({ log, store, netlink });

const g = <A extends unknown[], R>(op: string, f: (...args: A) => R) => guard(log, op, f);

export const driver: typeof DriverIface = {
  networkAllocate: g('network-allocate', (nid, options, v4, v6) => bridge.networkAllocate(nid, options, v4, v6)),
  networkFree: g('network-free', (nid) => bridge.networkFree(nid)),
  createNetwork: g('create-network', (_ctx, nid, options, _networkInfo, v4, v6) => bridge.createNetwork(nid, options, v4, v6)),
  deleteNetwork: g('delete-network', (nid) => bridge.deleteNetwork(nid)),
  createEndpoint: g('create-endpoint', (_ctx, nid, eid, interfaceInfo, options) => bridge.createEndpoint(nid, eid, interfaceInfo, options)),
  deleteEndpoint: g('delete-endpoint', (nid, eid) => bridge.deleteEndpoint(nid, eid)),
  endpointOperInfo: g('endpoint-oper-info', (nid, eid) => bridge.endpointOperInfo(nid, eid)),
  join: g('join', (_ctx, nid, eid, sandboxKey, joinInfo, _epOptions, _sbOptions) => bridge.join(nid, eid, sandboxKey, joinInfo)),
  leave: g('leave', (nid, eid) => bridge.leave(nid, eid)),
  type: () => bridge.type(),
  isBuiltIn: () => bridge.isBuiltIn(),
};

export const registration: typeof RegistrationIface = {
  describe: () => bridge.describe(),
};

export const extConner: typeof ExtConnerIface = {
  programExternalConnectivity: g('program-external-connectivity', (_ctx, nid, eid, gw4Id, gw6Id) =>
    bridge.programExternalConnectivity(nid, eid, gw4Id, gw6Id),
  ),
};
