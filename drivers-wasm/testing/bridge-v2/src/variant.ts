/// <reference path="../gen/bridge-next.d.ts" />
// A later version of the bridge driver for the hot-swap tests. It is the
// bridge driver itself, plus:
// - endpoint-oper-info names the version that answered (`wasmnet.version`),
//   so a test can tell which version served a call;
// - lifecycle.migrate records in the store that it ran, and from which version;
// - a mode that makes it misbehave on purpose:
//   `faulty` traps in every driver call (passes its self-check),
//   `global` registers another scope than the first version did,
//   `bad-migration` writes to the store and then fails its migration,
//   `bad-self-check` fails its self-check.
import * as log from 'wasmnet:host/log@0.1.0';
import * as store from 'wasmnet:host/store@0.1.0';
import * as netlink from 'wasmnet:host/netlink@0.1.0';
import type * as DriverIface from 'wasmnet:driver/driver@0.1.0';
import type * as RegistrationIface from 'wasmnet:driver/registration@0.1.0';
import type * as ExtConnerIface from 'wasmnet:driver/ext-conner@0.1.0';
import type * as LifecycleIface from 'wasmnet:driver/lifecycle@0.1.0';
import { BridgeDriver, guard } from '../../../bridge/src/bridge.ts';

export type Mode = 'good' | 'faulty' | 'global' | 'bad-migration' | 'bad-self-check';

export function variant(mode: Mode, version: string) {
  const bridge = new BridgeDriver({ log, store, netlink });
  const g = <A extends unknown[], R>(op: string, f: (...args: A) => R) =>
    mode === 'faulty'
      ? (..._args: A): R => {
          throw new Error(`version ${version} is faulty on purpose (${op})`);
        }
      : guard(log, op, f);

  const driver: typeof DriverIface = {
    networkAllocate: g('network-allocate', (nid, options, v4, v6) => bridge.networkAllocate(nid, options, v4, v6)),
    networkFree: g('network-free', (nid) => bridge.networkFree(nid)),
    createNetwork: g('create-network', (_ctx, nid, options, _networkInfo, v4, v6) => bridge.createNetwork(nid, options, v4, v6)),
    deleteNetwork: g('delete-network', (nid) => bridge.deleteNetwork(nid)),
    createEndpoint: g('create-endpoint', (_ctx, nid, eid, interfaceInfo, options) => bridge.createEndpoint(nid, eid, interfaceInfo, options)),
    deleteEndpoint: g('delete-endpoint', (nid, eid) => bridge.deleteEndpoint(nid, eid)),
    endpointOperInfo: g('endpoint-oper-info', (nid, eid) => [...bridge.endpointOperInfo(nid, eid), { key: 'wasmnet.version', value: JSON.stringify(version) }]),
    join: g('join', (_ctx, nid, eid, sandboxKey, joinInfo) => bridge.join(nid, eid, sandboxKey, joinInfo)),
    leave: g('leave', (nid, eid) => bridge.leave(nid, eid)),
    type: () => bridge.type(),
    isBuiltIn: () => bridge.isBuiltIn(),
  };

  const registration: typeof RegistrationIface = {
    describe: () => {
      const d = bridge.describe();
      return mode === 'global' ? { ...d, capability: { dataScope: 'global', connectivityScope: 'global' } } : d;
    },
  };

  const extConner: typeof ExtConnerIface = {
    programExternalConnectivity: g('program-external-connectivity', (_ctx, nid, eid, gw4Id, gw6Id) => bridge.programExternalConnectivity(nid, eid, gw4Id, gw6Id)),
  };

  const lifecycle: typeof LifecycleIface = {
    migrate: guard(log, 'migrate', (fromVersion: string) => {
      store.set(`migrations/${version}`, JSON.stringify({ from: fromVersion }));
      if (mode === 'bad-migration') throw { payload: { kind: 'internal', message: `migration to ${version} fails on purpose` } };
    }),
    selfCheck: guard(log, 'self-check', () => {
      if (mode === 'bad-self-check') throw { payload: { kind: 'internal', message: `version ${version} fails its self-check on purpose` } };
    }),
  };

  return { driver, registration, extConner, lifecycle };
}
