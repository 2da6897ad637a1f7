/// <reference path="../gen/adversary-driver.d.ts" />
// The adversary test driver (world wasmnet:adversary/adversary-driver): one
// component whose behaviour is chosen per call, so that one build covers
// every way a driver can misbehave. tests/integration/containment.test.ts
// checks that the host contains each of them.
//
// The mode of a call is, first found:
//   1. for CreateNetwork, the generic option `adversary.mode`
//      (`-o adversary.mode=loop`): this call misbehaves;
//   2. the mode armed for the network: CreateNetwork with `-o adversary.arm=<mode>`
//      behaves normally and stores `mode/<nid>`, so that the later calls on the
//      network (create-endpoint, join, leave, endpoint-oper-info, ...) misbehave;
//   3. the network ID, when it starts with a mode's name (`loop1`, `trap7`);
//   4. otherwise `normal`.
// Modes:
//   normal       a trivial driver: records networks, endpoints and joins in the store
//   loop         spins forever
//   memory       allocates (and touches) 1 MiB blocks until allocation fails, logs
//                `adversary: memory {bytes, error}`, then traps
//   recursion    unbounded recursion, left to escape
//   trap         throws a plain Error (traps the instance)
//   dirtytrap    writes `dirty/<nid>` to the store, then traps
//   garbage      endpoint-oper-info returns an entry whose value is not JSON
//   dupkeys      endpoint-oper-info returns the same key twice
//   wrongtype    endpoint-oper-info returns a number where the WIT says string
//   oversized    endpoint-oper-info / network-allocate return 128 KiB (the tests
//                run with a 64 KiB cap on return values)
//   huge         endpoint-oper-info returns about 20 MB
//   storm        calls netlink.get-link in a tight loop, forever
//   stormstore   calls store.get in a tight loop, forever
//   stormlog     calls log.log in a tight loop, forever
//   bigentries   asks the host for store.entries("big/"): as much as the store
//                holds there (the test puts more than a frame may carry)
//   probe        looks for globals that lead out of the sandbox (process, Deno,
//                require, fetch, ...) and answers err(forbidden) with the JSON
//                {mode, report}; probefetch, probeimport, probeeval, probeconsole,
//                proberandom and probeclock each call one such thing (fetch a file
//                and a socket, import node:fs, eval, console.log, random, clocks)
//                and report the same way, unless the call traps
//   keephandle   keeps the callback borrow (join-info, interface-info, network-info)
//                it was given in a module variable, and succeeds
//   stalehandle  uses the borrow of the same type kept by an earlier keephandle
//                call (join-info in join and leave: set-gateway 10.66.0.1, names
//                adstale0); logs `adversary: handles {mode, attempts}` if it gets
//                that far, then join goes on normally (so that the test can see
//                whether the stale borrow reached this join's join-info) and the
//                other methods answer err(forbidden) with the same JSON
//   foreignhandle calls methods on handles it was never given (a bare object
//                with the resource's prototype, copies of this call's borrow
//                with other handle numbers; in join: set-gateway 10.66.0.2);
//                reports like stalehandle
// `describe`, `type` and `is-built-in` always behave.
//
// componentize-js: an export returning result<_, E> returns err(E) when it
// throws a value whose `payload` is E; anything else thrown traps the instance.
import * as log from 'wasmnet:host/log@0.1.0';
import * as store from 'wasmnet:host/store@0.1.0';
import * as netlink from 'wasmnet:host/netlink@0.1.0';
import type * as DriverIface from 'wasmnet:driver/driver@0.1.0';
import type * as RegistrationIface from 'wasmnet:driver/registration@0.1.0';
import type * as Types from 'wasmnet:driver/types@0.1.0';

const NAME = 'wasmnet-adversary';
const OPT_GENERIC = 'com.docker.network.generic';

const MODES = [
  'normal',
  'loop',
  'memory',
  'recursion',
  'trap',
  'dirtytrap',
  'garbage',
  'dupkeys',
  'wrongtype',
  'oversized',
  'huge',
  'storm',
  'stormstore',
  'stormlog',
  'bigentries',
  'probe',
  'probefetch',
  'probeimport',
  'probeeval',
  'probeconsole',
  'proberandom',
  'probeclock',
  'keephandle',
  'stalehandle',
  'foreignhandle',
] as const;
type Mode = (typeof MODES)[number];
// Longest first, so that `stormstore1` is stormstore and not storm.
const byLength = [...MODES].sort((a, b) => b.length - a.length);

const isMode = (m: unknown): m is Mode => typeof m === 'string' && (MODES as readonly string[]).includes(m);

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

/** The mode of a call on network `nid` (rules 2 to 4 above). */
function modeOf(nid: string): Mode {
  const armed = store.get(`mode/${nid}`);
  if (isMode(armed)) return armed;
  return byLength.find((m) => nid.startsWith(m)) ?? 'normal';
}

// ---- the misbehaviours ------------------------------------------------------

let sink = 0;

function spin(): never {
  for (;;) sink = (sink + 1) | 0;
}

/** Module-level, so that what was allocated stays reachable. */
const hoard: Uint8Array[] = [];

function memoryBomb(): never {
  let bytes = 0;
  let error = '';
  try {
    for (;;) {
      const block = new Uint8Array(1 << 20);
      block.fill(0xa5); // touch every page
      hoard.push(block);
      bytes += block.length;
    }
  } catch (e) {
    error = String((e as { message?: unknown })?.message ?? e);
  }
  hoard.length = 0;
  try {
    log.log('error', `adversary: memory ${JSON.stringify({ bytes, error })}`);
  } catch {
    // the trap below is what the host must see
  }
  throw new Error(`adversary: out of memory after ${bytes} bytes`);
}

function recurse(n: number): number {
  return recurse(n + 1) + n;
}

function storm(what: 'netlink' | 'store' | 'log'): never {
  for (;;) {
    try {
      if (what === 'netlink') netlink.getLink('ad0');
      else if (what === 'store') store.get('network/none');
      else log.log('info', 'adversary: log storm');
    } catch {
      // rate-limited or denied: ask again
    }
  }
}

/** A probe's outcome: absent, present (and what), or what it threw. */
function look(f: () => unknown): string {
  try {
    const v = f();
    return v === undefined ? 'absent' : `present: ${typeof v === 'string' ? v : typeof v}`;
  } catch (e) {
    return `threw: ${String((e as { message?: unknown })?.message ?? e).slice(0, 200)}`;
  }
}

const g = globalThis as Record<string, unknown>;

/** The globals through which JavaScript reaches files, the environment, the network or processes on a JS host. */
const GLOBALS = ['process', 'Deno', 'Bun', 'require', 'module', 'Buffer', 'WebAssembly', 'os', 'std', 'read', 'readline', 'snarf', 'load', 'Components', 'XMLHttpRequest', 'WebSocket', 'Worker', 'navigator', 'fetch'];

/** What the `probe` mode looks at without calling anything: which of GLOBALS exist. */
function probeGlobals(): Record<string, string> {
  const report: Record<string, string> = {};
  for (const name of GLOBALS) report[name] = look(() => g[name]);
  report['process.env'] = look(() => (g.process as { env?: unknown } | undefined)?.env);
  report['Deno.readTextFileSync'] = look(() => (g.Deno as { readTextFileSync?: unknown } | undefined)?.readTextFileSync);
  report['os.file.readFile'] = look(() => (g.os as { file?: { readFile?: unknown } } | undefined)?.file?.readFile);
  return report;
}

/** Calls a function-valued global; a promise it returns can only settle after this call, so its outcome is logged. */
function callGlobal(name: string, ...args: unknown[]): unknown {
  const f = g[name] as ((...a: unknown[]) => unknown) | undefined;
  if (typeof f !== 'function') return undefined;
  const r = f(...args) as { then?: (ok: () => void, ko: () => void) => void } | undefined;
  r?.then?.(
    () => log.log('error', `adversary: ${name}(${JSON.stringify(args[0])}) resolved`),
    () => {},
  );
  return 'called';
}

/** The probes that call something; each runs in a call of its own, since any of them may trap. */
const PROBES = {
  probefetch: () => ({
    'fetch(file:///etc/passwd)': look(() => callGlobal('fetch', 'file:///etc/passwd')),
    'fetch(http://127.0.0.1:1/)': look(() => callGlobal('fetch', 'http://127.0.0.1:1/')),
  }),
  probeimport: () => ({
    // Built at run time so that the bundler leaves it alone.
    'import(node:fs)': look(() => {
      const dynamicImport = new Function('s', 'return import(s)') as (s: string) => Promise<unknown>;
      dynamicImport('node:fs').then(
        () => log.log('error', 'adversary: import(node:fs) resolved'),
        () => {},
      );
      return 'a promise';
    }),
  }),
  probeeval: () => ({
    eval: look(() => (0, eval)('"eval works"')),
    Function: look(() => new Function('return "Function works"')()),
  }),
  probeconsole: () => ({
    // A frame of the host's pipe protocol, as text: it must go nowhere near that pipe.
    'console.log': look(() => {
      const c = g.console as { log?: (...a: unknown[]) => void } | undefined;
      c?.log?.('{"t":"done","id":1,"outcome":{"ok":true,"value":null}}');
      return c?.log ? 'called' : undefined;
    }),
  }),
  proberandom: () => ({ 'crypto.getRandomValues': look(() => (g.crypto as { getRandomValues?: (a: Uint8Array) => Uint8Array } | undefined)?.getRandomValues?.(new Uint8Array(8))) }),
  probeclock: () => ({
    'Date.now': look(() => String(Date.now())),
    'performance.now': look(() => String((g.performance as { now?: () => number } | undefined)?.now?.())),
  }),
} as const;

// Callback borrows kept past the call that was given them.
const kept: { joinInfo?: object; interfaceInfo?: object; networkInfo?: object } = {};

type Attempt = { what: string; outcome: string };

/** Runs `f`, recording what happened; logs first, so that a trap still leaves a trace. */
function attempt(attempts: Attempt[], what: string, f: () => unknown): void {
  try {
    log.log('warn', `adversary: attempting ${what}`);
  } catch {
    // the attempt matters more
  }
  try {
    const v = f();
    attempts.push({ what, outcome: `returned ${JSON.stringify(v) ?? 'nothing'}` });
  } catch (e) {
    const payload = (e as { payload?: unknown })?.payload;
    attempts.push({ what, outcome: `threw ${payload !== undefined ? JSON.stringify(payload) : String((e as { message?: unknown })?.message ?? e)}` });
  }
}

type Callable = Record<string, (...a: unknown[]) => unknown>;

/** Logs what the attempts gave (`adversary: handles {...}`); in join the call then goes on normally, elsewhere it answers err(forbidden) with the same JSON. */
function report(op: string, r: { mode: string; attempts: Attempt[]; kept?: string[] }): void {
  const text = JSON.stringify(r);
  try {
    log.log('warn', `adversary: handles ${text}`);
  } catch {
    // the answer below carries it too
  }
  if (op !== 'join') fail('forbidden', text);
}

function useStale(op: string): void {
  const attempts: Attempt[] = [];
  if (kept.joinInfo && (op === 'join' || op === 'leave')) {
    const j = kept.joinInfo as Callable;
    attempt(attempts, 'stale join-info set-gateway', () => j.setGateway!('10.66.0.1'));
    attempt(attempts, 'stale join-info interface-name', () => (j.interfaceName!() as Callable).setNames!('adstale0', 'eth', ''));
  }
  if (kept.interfaceInfo && op === 'create-endpoint') {
    const i = kept.interfaceInfo as Callable;
    attempt(attempts, 'stale interface-info mac-address', () => i.macAddress!());
    attempt(attempts, 'stale interface-info set-mac-address', () => i.setMacAddress!('02:66:00:00:00:01'));
  }
  if (kept.networkInfo && op === 'create-network') {
    const n = kept.networkInfo as Callable;
    attempt(attempts, 'stale network-info update-ipam-config', () => n.updateIpamConfig!([]));
  }
  report(op, { mode: 'stalehandle', kept: Object.keys(kept), attempts });
}

/** Copies of `real` (a borrow of this call) with other handle numbers, and a bare object of its class. */
function forgeries(real: object): [string, object][] {
  const proto = Object.getPrototypeOf(real) as object;
  const out: [string, object][] = [['a bare object with the prototype', Object.create(proto) as object]];
  const symbols = Object.getOwnPropertySymbols(real);
  const own = Object.getOwnPropertyNames(real);
  for (const delta of [1, 7, 1000, 0x7fffffff]) {
    const copy = Object.create(proto) as Record<string | symbol, unknown>;
    let changed = false;
    for (const key of [...symbols, ...own]) {
      const v = (real as Record<string | symbol, unknown>)[key];
      if (typeof v === 'number') {
        copy[key] = delta === 0x7fffffff ? delta : v + delta;
        changed = true;
      } else copy[key] = v;
    }
    if (changed) out.push([`a copy with handle ${delta === 0x7fffffff ? delta : `+${delta}`}`, copy]);
  }
  return out;
}

function useForeign(op: string, current: object | undefined, method: string, args: unknown[]): void {
  const attempts: Attempt[] = [];
  if (current) {
    attempt(attempts, `own handle keys`, () => [...Object.getOwnPropertyNames(current), ...Object.getOwnPropertySymbols(current).map(String)]);
    for (const [what, forged] of forgeries(current)) attempt(attempts, `${what}: ${method}`, () => (forged as Callable)[method]!(...args));
  }
  // A method of another resource type on this borrow.
  const other = kept.networkInfo ?? kept.interfaceInfo;
  if (current && other) {
    const m = Object.getOwnPropertyNames(Object.getPrototypeOf(other)).find((n) => n !== 'constructor');
    if (m) attempt(attempts, `another type's method ${m} on this borrow`, () => ((Object.getPrototypeOf(other) as Callable)[m]!).call(current, []));
  }
  report(op, { mode: 'foreignhandle', attempts });
}

/** What a mode does in `op`; returns only for the modes that let the call go on. */
function misbehave(mode: Mode, op: string, nid: string): void {
  switch (mode) {
    case 'normal':
    case 'keephandle':
    case 'garbage':
    case 'dupkeys':
    case 'wrongtype':
    case 'oversized':
    case 'huge':
    case 'stalehandle':
    case 'foreignhandle':
      return;
    case 'loop':
      spin();
    case 'memory':
      memoryBomb();
    case 'recursion':
      recurse(0);
      return;
    case 'trap':
      throw new Error(`adversary: trap in ${op}`);
    case 'dirtytrap':
      store.set(`dirty/${nid}`, op);
      throw new Error(`adversary: trap in ${op} after writing dirty/${nid}`);
    case 'storm':
      storm('netlink');
    case 'stormstore':
      storm('store');
    case 'stormlog':
      storm('log');
    case 'bigentries':
      fail('internal', `adversary: got ${store.entries('big/').length} big entries`);
    case 'probe':
      fail('forbidden', JSON.stringify({ mode, report: probeGlobals() }));
    case 'probefetch':
    case 'probeimport':
    case 'probeeval':
    case 'probeconsole':
    case 'proberandom':
    case 'probeclock':
      fail('forbidden', JSON.stringify({ mode, report: PROBES[mode]() }));
  }
}

const MB = 1 << 20;

/** `count` entries, each (the same) JSON string of `size` bytes. */
function bigOptions(count: number, size: number): Types.Options {
  const value = `"${'x'.repeat(size - 2)}"`;
  return Array.from({ length: count }, (_, i) => ({ key: `big${i}`, value }));
}

// ---- the driver ---------------------------------------------------------------

export const driver: typeof DriverIface = {
  networkAllocate: (nid) => {
    const mode = modeOf(nid);
    misbehave(mode, 'network-allocate', nid);
    if (mode === 'oversized') return [['big1', 'x'.repeat(64 * 1024)], ['big2', 'x'.repeat(64 * 1024)]];
    if (mode === 'garbage') return [['k', 'v'], ['k', 'w']];
    return [];
  },
  networkFree: (nid) => misbehave(modeOf(nid), 'network-free', nid),
  createNetwork: (_ctx, nid, options, networkInfo) => {
    const generic = genericOptions(options);
    const asked = generic['adversary.mode'];
    const armed = generic['adversary.arm'];
    if (asked !== undefined && !isMode(asked)) fail('invalid-parameter', `adversary: unknown mode ${JSON.stringify(asked)} (known: ${MODES.join(', ')})`);
    if (armed !== undefined && !isMode(armed)) fail('invalid-parameter', `adversary: unknown mode ${JSON.stringify(armed)} (known: ${MODES.join(', ')})`);
    const mode = isMode(asked) ? asked : isMode(armed) ? 'normal' : byLength.find((m) => nid.startsWith(m)) ?? 'normal';
    misbehave(mode, 'create-network', nid);
    if (mode === 'keephandle') kept.networkInfo = networkInfo;
    if (mode === 'stalehandle') useStale('create-network');
    if (mode === 'foreignhandle') useForeign('create-network', networkInfo, 'updateIpamConfig', [[]]);
    store.set(`network/${nid}`, JSON.stringify({ generic }));
    if (isMode(armed)) store.set(`mode/${nid}`, armed);
  },
  deleteNetwork: (nid) => {
    misbehave(modeOf(nid), 'delete-network', nid);
    for (const [key] of store.entries(`endpoint/${nid}/`)) store.delete(key);
    store.delete(`mode/${nid}`);
    if (!store.delete(`network/${nid}`)) fail('not-found', `adversary: no network ${nid}`);
  },
  createEndpoint: (_ctx, nid, eid, interfaceInfo) => {
    const mode = modeOf(nid);
    misbehave(mode, 'create-endpoint', nid);
    if (mode === 'keephandle') kept.interfaceInfo = interfaceInfo;
    if (mode === 'stalehandle') useStale('create-endpoint');
    if (mode === 'foreignhandle') useForeign('create-endpoint', interfaceInfo, 'setMacAddress', ['02:66:00:00:00:02']);
    if (store.get(`network/${nid}`) === undefined) fail('not-found', `adversary: no network ${nid}`);
    store.set(`endpoint/${nid}/${eid}`, '{}');
  },
  deleteEndpoint: (nid, eid) => {
    misbehave(modeOf(nid), 'delete-endpoint', nid);
    if (!store.delete(`endpoint/${nid}/${eid}`)) fail('not-found', `adversary: no endpoint ${eid}`);
  },
  endpointOperInfo: (nid, eid) => {
    const mode = modeOf(nid);
    misbehave(mode, 'endpoint-oper-info', nid);
    switch (mode) {
      case 'garbage':
        return [{ key: 'adversary', value: '{this is not JSON' }];
      case 'dupkeys':
        return [
          { key: 'adversary', value: '1' },
          { key: 'adversary', value: '2' },
        ];
      case 'wrongtype':
        return [{ key: 'adversary', value: 42 as unknown as string }];
      case 'oversized':
        return bigOptions(2, 64 * 1024);
      case 'huge':
        return bigOptions(20, MB);
      case 'stalehandle':
        useStale('endpoint-oper-info');
        break;
      default:
        break;
    }
    return [{ key: 'adversary', value: JSON.stringify({ nid, eid, mode }) }];
  },
  join: (_ctx, nid, eid, sandboxKey, joinInfo) => {
    const mode = modeOf(nid);
    misbehave(mode, 'join', nid);
    if (mode === 'keephandle') kept.joinInfo = joinInfo;
    if (mode === 'stalehandle') useStale('join');
    if (mode === 'foreignhandle') useForeign('join', joinInfo, 'setGateway', ['10.66.0.2']);
    // Only a join that behaves records itself.
    if (mode === 'normal' || mode === 'keephandle') store.set(`join/${nid}/${eid}`, JSON.stringify({ sandboxKey }));
  },
  leave: (nid, eid) => {
    const mode = modeOf(nid);
    misbehave(mode, 'leave', nid);
    if (mode === 'stalehandle') useStale('leave');
    store.delete(`join/${nid}/${eid}`);
  },
  type: () => NAME,
  isBuiltIn: () => false,
};

export const registration: typeof RegistrationIface = {
  describe: () => ({ name: NAME, capability: { dataScope: 'local', connectivityScope: 'local' } }),
};
