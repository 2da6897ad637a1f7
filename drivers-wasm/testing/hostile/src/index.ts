/// <reference path="../gen/hostile-driver.d.ts" />
// The hostile test driver (world wasmnet:hostile/hostile-driver): a driver
// that tries to get around the host's netlink policy. Each CreateNetwork
// names one escape attempt in its generic options,
//   -o hostile.attempt=<name>   (com.docker.network.generic)
//   -o hostile.netns=<path>     a namespace never given to the driver
// performs it (attempts.ts) and answers with a driver error whose message is
// the JSON report {attempt, outcome, detail}: what the host answered to the
// driver ('denied', 'rate-limited', 'invalid', 'kernel' or 'allowed').
// tests/integration/hostile.test.ts reads it. Every other method does nothing.
//
// componentize-js: an export returning result<_, E> returns err(E) when it
// throws a value whose `payload` is E; anything else thrown traps the
// instance, so nothing else may escape an export.
import * as log from 'wasmnet:host/log@0.1.0';
import * as store from 'wasmnet:host/store@0.1.0';
import * as netlink from 'wasmnet:host/netlink@0.1.0';
import type * as DriverIface from 'wasmnet:driver/driver@0.1.0';
import type * as RegistrationIface from 'wasmnet:driver/registration@0.1.0';
import type * as Types from 'wasmnet:driver/types@0.1.0';
import { runAttempt, type Report } from './attempts.ts';

const NAME = 'wasmnet-hostile';
const OPT_GENERIC = 'com.docker.network.generic';

function fail(kind: Types.ErrorKind, message: string): never {
  throw { payload: { kind, message } satisfies Types.DriverError };
}

/** The generic options (`-o key=value`) of a CreateNetwork. */
function genericOptions(options: Types.Options): Record<string, unknown> {
  const entry = options.find((o) => o.key === OPT_GENERIC);
  if (!entry) return {};
  try {
    const v = JSON.parse(entry.value) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function createNetwork(options: Types.Options): never {
  const generic = genericOptions(options);
  const attempt = generic['hostile.attempt'];
  if (typeof attempt !== 'string') fail('invalid-parameter', 'hostile: -o hostile.attempt=<name> is required');
  const netns = typeof generic['hostile.netns'] === 'string' ? generic['hostile.netns'] : '/var/run/netns/never-given';
  let report: Report;
  try {
    report = runAttempt(attempt, { nl: netlink, netns });
  } catch (e) {
    report = { attempt, outcome: 'invalid', detail: `the attempt threw: ${String((e as { message?: unknown })?.message ?? e)}` };
  }
  try {
    store.set('last-attempt', JSON.stringify(report));
    log.log('warn', `hostile: attempt ${attempt}: ${report.outcome}`);
  } catch {
    // the report is what matters
  }
  fail('forbidden', JSON.stringify(report));
}

const nothing = (): void => {};

export const driver: typeof DriverIface = {
  networkAllocate: () => [],
  networkFree: nothing,
  createNetwork: (_ctx, _nid, options) => createNetwork(options),
  deleteNetwork: nothing,
  createEndpoint: () => fail('not-implemented', 'hostile: no endpoints'),
  deleteEndpoint: nothing,
  endpointOperInfo: () => [],
  join: () => fail('not-implemented', 'hostile: no joins'),
  leave: nothing,
  type: () => NAME,
  isBuiltIn: () => false,
};

export const registration: typeof RegistrationIface = {
  describe: () => ({ name: NAME, capability: { dataScope: 'local', connectivityScope: 'local' } }),
};
