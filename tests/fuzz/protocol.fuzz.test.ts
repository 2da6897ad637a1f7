// Protocol fuzzing (issue 4, point 6): malformed, truncated, oversized, wrongly
// typed and out-of-order requests against the plugin protocol, with
// fast-check. Most properties run against the Hono app in-process, in front
// of a DriverHost whose (in-process) fake driver records every call and keeps
// its state in a real SqliteStateStore(':memory:') key space, the way the
// bundled drivers do (network/<nid>, endpoint/<nid>/<eid>, join/<nid>/<eid>);
// the host side writes its scopes (pools, sandboxes) and audit log into the
// same store. For every malformed request: the app answers (never throws),
// the answer is {"Err": string} with the status the code defines (400 for a
// body that is not JSON or fails its schema, 413 over the size limit, 404 for
// an unknown path or HTTP method), the driver is not called, and a snapshot of
// every table of the store is the same before and after. Out-of-order
// sequences of well-formed requests run against a model of the fake driver.
// One last property sends raw malformed HTTP to the real host (bundled bridge
// driver, in a private network namespace) over its unix socket.
//
// Deterministic: the seed is printed; FUZZ_SEED=<n> replays another one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import fc from 'fast-check';
import pino from 'pino';
import type { Hono } from 'hono';
import { createPluginApp, defaultMaxBodyBytes, singleRoute } from '../../host/core/plugin-app.ts';
import { methods, type Method } from '../../host/core/schemas.ts';
import { DriverHost } from '../../runtime/driver-host.ts';
import { InProcessInvoker } from '../../runtime/invoker.ts';
import { CONTRACT_VERSION, type DriverExports } from '../../runtime/contract.ts';
import type { InterfaceInfo, JoinInfo } from '../../runtime/callbacks.ts';
import { SqliteStateStore } from '../../runtime/store/sqlite.ts';
import type { KeyValueStore } from '../../runtime/store/store.ts';
import { callPlugin } from '../lib/plugin-client.ts';
import { REPO_ROOT, WasmnetHost } from '../lib/wasmnet-host.ts';

const seed = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? Number(process.env.FUZZ_SEED) : 0x5eed_f022;
if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, not ${JSON.stringify(process.env.FUZZ_SEED)}`);
console.log(`protocol fuzz: seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
const fcParams = (numRuns: number) => ({ seed, numRuns, endOnFailure: false, verbose: 0 as const });

/** Requests sent, per category (malformed ones, and out-of-order ones). */
const counts: Record<string, number> = {};
const count = (what: string) => void (counts[what] = (counts[what] ?? 0) + 1);

const maxBody = defaultMaxBodyBytes;
const N1 = '1'.repeat(64);
const N2 = '2'.repeat(64);
const E1 = 'a'.repeat(64);
const E2 = 'b'.repeat(64);
const knownIds = [N1, N2, E1, E2];

// ---------------------------------------------------------------------------
// The world: a store, a stateful fake driver, a DriverHost, the app.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const fail = (kind: string, message: string): never => {
  throw { kind, message };
};

/**
 * A driver that keeps its state in its store key space and refuses what a
 * real driver refuses: duplicates (forbidden), unknown IDs (not-found),
 * deleting a network that has endpoints or an endpoint that is joined
 * (forbidden).
 */
function statefulDriver(kv: KeyValueStore, calls: string[]): DriverExports {
  const rec = <A extends unknown[], R>(name: string, fn: (...a: A) => R) => (...a: A): R => {
    calls.push(name);
    return fn(...a);
  };
  const net = (nid: string) => kv.get(`network/${nid}`) !== undefined;
  const ep = (nid: string, eid: string) => kv.get(`endpoint/${nid}/${eid}`);
  return {
    registration: { describe: () => ({ name: 'fake', capability: { dataScope: 'local', connectivityScope: 'local' } }) },
    driver: {
      networkAllocate: rec('networkAllocate', (nid: string) => {
        kv.set(`alloc/${nid}`, '{}');
        return [['allocated', nid]];
      }),
      networkFree: rec('networkFree', (nid: string) => {
        if (!kv.delete(`alloc/${nid}`)) fail('not-found', `no allocation for ${nid}`);
      }),
      createNetwork: rec('createNetwork', (_ctx: unknown, nid: string, _options: unknown, _info: unknown, ipv4: { pool?: string }[]) => {
        if (net(nid)) fail('forbidden', `network ${nid} already exists`);
        kv.set(`network/${nid}`, JSON.stringify({ pools: ipv4.map((d) => d.pool ?? null) }));
      }),
      deleteNetwork: rec('deleteNetwork', (nid: string) => {
        if (!net(nid)) fail('not-found', `network ${nid} not found`);
        if (kv.entries(`endpoint/${nid}/`).length > 0) fail('forbidden', `network ${nid} has endpoints`);
        kv.delete(`network/${nid}`);
      }),
      createEndpoint: rec('createEndpoint', (_ctx: unknown, nid: string, eid: string, info: InterfaceInfo) => {
        if (!net(nid)) fail('not-found', `network ${nid} not found`);
        if (ep(nid, eid) !== undefined) fail('forbidden', `endpoint ${eid} already exists`);
        if (info.macAddress() === undefined) info.setMacAddress(macOf(eid));
        kv.set(`endpoint/${nid}/${eid}`, JSON.stringify({ mac: info.macAddress() }));
      }),
      deleteEndpoint: rec('deleteEndpoint', (nid: string, eid: string) => {
        if (ep(nid, eid) === undefined) fail('not-found', `endpoint ${eid} not found`);
        if (kv.get(`join/${nid}/${eid}`) !== undefined) fail('forbidden', `endpoint ${eid} is joined`);
        kv.delete(`endpoint/${nid}/${eid}`);
        kv.delete(`gateway/${nid}/${eid}`);
      }),
      endpointOperInfo: rec('endpointOperInfo', (nid: string, eid: string) => {
        const e = ep(nid, eid) ?? fail('not-found', `endpoint ${eid} not found`);
        return [{ key: 'com.docker.network.endpoint.macaddress', value: JSON.stringify((JSON.parse(e) as { mac: string }).mac) }];
      }),
      join: rec('join', (_ctx: unknown, nid: string, eid: string, sandboxKey: string, info: JoinInfo) => {
        if (ep(nid, eid) === undefined) fail('not-found', `endpoint ${eid} not found`);
        if (kv.get(`join/${nid}/${eid}`) !== undefined) fail('forbidden', `endpoint ${eid} is already joined`);
        info.interfaceName().setNames(`fz${eid.slice(0, 8)}`, 'eth', '');
        kv.set(`join/${nid}/${eid}`, JSON.stringify({ sandboxKey }));
      }),
      leave: rec('leave', (nid: string, eid: string) => {
        if (!kv.delete(`join/${nid}/${eid}`)) fail('not-found', `endpoint ${eid} is not joined`);
      }),
      type: () => 'fake',
      isBuiltIn: () => false,
    },
    extConner: {
      programExternalConnectivity: rec('programExternalConnectivity', (_ctx: unknown, nid: string, eid: string, gw4: string) => {
        if (ep(nid, eid) === undefined) fail('not-found', `endpoint ${eid} not found`);
        if (gw4 === '') kv.delete(`gateway/${nid}/${eid}`);
        else kv.set(`gateway/${nid}/${eid}`, '{}');
      }),
    },
    gwAllocChecker: { getSkipGwAlloc: rec('getSkipGwAlloc', () => ({ skipIpv4: false, skipIpv6: true })) },
  } as unknown as DriverExports;
}

const macOf = (eid: string) => `02:42:${eid.slice(0, 8).replace(/(..)(?!$)/g, '$1:')}`;

interface World {
  app: Hono;
  store: SqliteStateStore;
  kv: KeyValueStore;
  calls: string[];
}

async function makeWorld(optional: { gwAllocChecker: boolean } = { gwAllocChecker: true }): Promise<World> {
  const store = new SqliteStateStore(':memory:');
  const kv = store.forDriver('fake');
  const calls: string[] = [];
  const exports = statefulDriver(kv, calls);
  if (!optional.gwAllocChecker) delete exports.gwAllocChecker;
  const prepared = {
    digest: 'sha256:0',
    imports: [],
    exports: [
      `wasmnet:driver/driver@${CONTRACT_VERSION}`,
      `wasmnet:driver/registration@${CONTRACT_VERSION}`,
      `wasmnet:driver/ext-conner@${CONTRACT_VERSION}`,
      ...(optional.gwAllocChecker ? [`wasmnet:driver/gw-alloc-checker@${CONTRACT_VERSION}`] : []),
    ],
  };
  const host = await DriverHost.start(prepared, new InProcessInvoker({ exports }), {
    callTimeoutMs: 10_000,
    scopes: { driver: 'fake', store: store.scopes },
    afterCall: () => store.audit.flush(),
  });
  // The production size limit (1 MiB), as serve.ts builds it.
  const app = createPluginApp({ route: singleRoute(host), logger: pino({ level: 'silent' }) });
  return { app, store, kv, calls };
}

/** Every row of every table, as text: equal snapshots mean an unchanged store. */
function snapshot(store: SqliteStateStore): string {
  store.audit.flush();
  let reads = snapshotReads.get(store);
  if (!reads) {
    // The handle is private to the store; a test may look inside.
    const db = (store as unknown as { db: DatabaseSync }).db;
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    reads = tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`)] as const);
    snapshotReads.set(store, reads);
  }
  const out: Record<string, string[]> = {};
  for (const [t, read] of reads) out[t] = read.all().map((r) => JSON.stringify(r)).sort();
  return JSON.stringify(out);
}
const snapshotReads = new WeakMap<SqliteStateStore, (readonly [string, StatementSync])[]>();

const protoKeys = () => Object.getOwnPropertyNames(Object.prototype).sort().join(',');
const baselineProtoKeys = protoKeys();

function assertNoPollution(): void {
  assert.equal(protoKeys(), baselineProtoKeys, 'Object.prototype gained properties');
  const probe = {} as Record<string, unknown>;
  for (const k of ['NetworkID', 'EndpointID', 'SandboxKey', 'Options', 'polluted', 'DiscoveryType']) assert.equal(probe[k], undefined, `Object.prototype.${k} is set`);
}

interface Reply {
  status: number;
  json: Record<string, unknown>;
}

/** One request through app.request; fails unless it resolves with a JSON body. */
async function send(app: Hono, httpMethod: string, path: string, body?: string | Uint8Array): Promise<Reply> {
  const res = await app.request(path, { method: httpMethod, body: body as BodyInit | undefined, headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' } });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    assert.fail(`${httpMethod} ${path}: ${res.status} reply is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  assert.ok(json !== null && typeof json === 'object' && !Array.isArray(json), `${httpMethod} ${path}: reply is not a JSON object: ${text.slice(0, 200)}`);
  return { status: res.status, json: json as Record<string, unknown> };
}

/**
 * Sends a request that must be refused: it resolves, the answer is exactly
 * {"Err": string} with `status` and a message matching `err`, no driver call
 * happens and the store is unchanged.
 */
async function expectRefused(w: World, category: string, httpMethod: string, path: string, body: string | Uint8Array | undefined, status: number, err: string | RegExp): Promise<void> {
  const before = snapshot(w.store);
  const calls = w.calls.length;
  const r = await send(w.app, httpMethod, path, body);
  const what = `${httpMethod} ${path} ${typeof body === 'string' ? JSON.stringify(body.slice(0, 300)) : body === undefined ? '(no body)' : `(${body.length} bytes)`}`;
  assert.equal(r.status, status, `${what}: status ${r.status}, answer ${JSON.stringify(r.json).slice(0, 300)}`);
  assert.deepEqual(Object.keys(r.json), ['Err'], `${what}: answer ${JSON.stringify(r.json).slice(0, 300)}`);
  assert.equal(typeof r.json.Err, 'string', what);
  if (typeof err === 'string') assert.equal(r.json.Err, err, what);
  else assert.match(r.json.Err as string, err, what);
  assert.deepEqual(w.calls.slice(calls), [], `${what}: the driver was called`);
  assert.equal(snapshot(w.store), before, `${what}: the store changed`);
  assertNoPollution();
  count(category);
}

/** Brings a world into a state with something in every table the protocol side touches. */
async function populate(w: World): Promise<void> {
  const ok = async (method: string, body: unknown) => {
    const r = await send(w.app, 'POST', `/NetworkDriver.${method}`, JSON.stringify(body) + '\n');
    assert.equal(r.status, 200, `${method}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.Err, undefined, `${method}: ${JSON.stringify(r.json)}`);
  };
  await ok('CreateNetwork', { NetworkID: N1, Options: {}, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.9.0.0/24', Gateway: '10.9.0.1/24' }], IPv6Data: [] });
  await ok('CreateEndpoint', { NetworkID: N1, EndpointID: E1, Interface: { Address: '10.9.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
  await ok('Join', { NetworkID: N1, EndpointID: E1, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} });
  await ok('ProgramExternalConnectivity', { NetworkID: N1, EndpointID: E1, Options: {} });
  await ok('AllocateNetwork', { NetworkID: N2, Options: { a: 'b' }, IPv4Data: [], IPv6Data: [] });
  w.store.audit.record({ time: new Date(0).toISOString(), driver: 'fake', version: '0', op: 'probe', args: {}, allowed: true, durationMs: 0 });
  w.store.audit.flush();
}

// ---------------------------------------------------------------------------
// Field specs and generators of bad values (bad by construction, not by
// asking the schema under test).

type Slot = 'id' | 'sandboxKey' | 'options' | 'stringMap' | 'ipamList' | 'iface' | 'discoveryType' | 'any';
type Field = { slot: Slot; required: boolean };
const req = (slot: Slot): Field => ({ slot, required: true });
const opt = (slot: Slot): Field => ({ slot, required: false });
const ids = { NetworkID: req('id'), EndpointID: req('id') };
const discovery = { DiscoveryType: req('discoveryType'), DiscoveryData: req('any') };
const fields: Record<Method, Record<string, Field>> = {
  GwAllocCheck: { Options: opt('options') },
  CreateNetwork: { NetworkID: req('id'), Options: opt('options'), IPv4Data: opt('ipamList'), IPv6Data: opt('ipamList') },
  DeleteNetwork: { NetworkID: req('id') },
  CreateEndpoint: { ...ids, Interface: opt('iface'), Options: opt('options') },
  EndpointOperInfo: ids,
  DeleteEndpoint: ids,
  Join: { ...ids, SandboxKey: req('sandboxKey'), Options: opt('options') },
  Leave: ids,
  ProgramExternalConnectivity: { ...ids, Options: opt('options') },
  RevokeExternalConnectivity: ids,
  DiscoverNew: discovery,
  DiscoverDelete: discovery,
  AllocateNetwork: { NetworkID: req('id'), Options: opt('stringMap'), IPv4Data: opt('ipamList'), IPv6Data: opt('ipamList') },
  FreeNetwork: { NetworkID: req('id') },
};
assert.deepEqual(Object.keys(fields).sort(), [...methods].sort(), 'the fuzzer knows every method of schemas.ts');
const fieldNames = new Set(Object.values(fields).flatMap((f) => Object.keys(f)));
const hasRequired = (m: Method) => Object.values(fields[m]).some((f) => f.required);
const withRequired = methods.filter(hasRequired);

const alnum = fc.constantFrom(...'0123456789abcdefABCDEFxyzXYZ');
const goodId = fc.oneof(fc.constantFrom(...knownIds), fc.string({ unit: alnum, minLength: 1, maxLength: 64 }));
const v4 = fc.ipV4();
const v6 = fc.ipV6();
const goodCidr = fc.oneof(fc.tuple(v4, fc.integer({ min: 0, max: 32 })), fc.tuple(v6, fc.integer({ min: 0, max: 128 }))).map(([ip, len]) => `${ip}/${len}`);
const goodMac = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const jsonValue = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
const goodOptions = fc.dictionary(fc.string({ maxLength: 20 }), jsonValue, { maxKeys: 4 });
const goodIpam = fc.record(
  { AddressSpace: fc.constantFrom('LocalDefault', 'GlobalDefault', ''), Pool: goodCidr, Gateway: goodCidr, AuxAddresses: fc.dictionary(fc.string({ maxLength: 8 }), goodCidr, { maxKeys: 2 }) },
  { requiredKeys: [] },
);
const goodValue: Record<Slot, fc.Arbitrary<Json>> = {
  id: goodId,
  sandboxKey: fc.oneof(fc.constant('/var/run/docker/netns/0123456789ab'), fc.string({ maxLength: 64 })),
  options: fc.oneof(goodOptions, fc.constant(null)),
  stringMap: fc.oneof(fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }), fc.constant(null)),
  ipamList: fc.oneof(fc.array(goodIpam, { maxLength: 2 }), fc.constant(null)),
  iface: fc.oneof(
    fc.record({ Address: fc.oneof(fc.constant(''), goodCidr), AddressIPv6: fc.oneof(fc.constant(''), goodCidr), MacAddress: fc.oneof(fc.constant(''), goodMac) }, { requiredKeys: [] }),
    fc.constant(null),
  ),
  discoveryType: fc.integer({ min: -5, max: 5 }),
  any: jsonValue,
};

/** A well-formed body of `m` (the base that mutations break). */
const goodBody = (m: Method): fc.Arbitrary<Record<string, Json>> => {
  const spec = fields[m];
  const shape: Record<string, fc.Arbitrary<Json>> = {};
  for (const [k, f] of Object.entries(spec)) shape[k] = goodValue[f.slot];
  return fc.record(shape, { requiredKeys: Object.keys(spec).filter((k) => spec[k]!.required) }) as fc.Arbitrary<Record<string, Json>>;
};

// Up to 100,000 characters: under the 1 MiB limit even as JSON escapes ("\u0000" is six bytes).
const hugeString = fc.tuple(fc.constantFrom('a', '0', 'Z', 'é', '\u0000'), fc.integer({ min: 10_000, max: 100_000 })).map(([c, n]) => c.repeat(n));
const scalarsNotString: fc.Arbitrary<Json> = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const notString: fc.Arbitrary<Json> = fc.oneof(scalarsNotString, fc.array(jsonValue, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 3 }));
/**
 * Not a JSON object: scalars. Arrays are left out on purpose: valibot's
 * object() and record() take a JSON array for an object (see the FINDING
 * tests below), so a list where an object is expected is not refused.
 */
const notObject: fc.Arbitrary<Json> = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string({ maxLength: 20 }));
/** Object keys that JSON.parse and valibot treat as ordinary ones. */
const plainKey = fc.string({ maxLength: 10 }).filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k));
const nonAlnumChar = fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }).filter((c) => !/^[0-9A-Za-z]$/.test(c));

const badId: fc.Arbitrary<Json> = fc.oneof(
  notString,
  fc.constant(''),
  fc.string({ unit: alnum, minLength: 65, maxLength: 300 }),
  hugeString,
  fc.tuple(fc.string({ unit: alnum, maxLength: 63 }), nonAlnumChar, fc.nat()).map(([s, c, at]) => {
    const i = at % (s.length + 1);
    return s.slice(0, i) + c + s.slice(i);
  }),
  fc.constantFrom('../../etc/passwd', 'a b', ' a', 'a\n', 'abc;rm -rf /', 'ａｂｃ', 'a\u0000', '1'.repeat(64) + '\n', '%41'),
);

/** Strings no CIDR parser takes: a bad prefix length, no prefix, an octet over 255, no slash at all, padding. */
const badCidr: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(v4, fc.integer({ min: 33, max: 999 })).map(([ip, l]) => `${ip}/${l}`),
  fc.tuple(v6, fc.integer({ min: 129, max: 99999 })).map(([ip, l]) => `${ip}/${l}`),
  fc.tuple(fc.oneof(v4, v6), fc.constantFrom('', '/', '/-1', '/+8', '/8/8', '/ 8', '/8 ', '/0x8', '/abc')).map(([ip, s]) => ip + s),
  fc.tuple(fc.integer({ min: 256, max: 9999 }), fc.integer({ min: 0, max: 32 })).map(([o, l]) => `${o}.0.0.1/${l}`),
  fc.tuple(goodCidr, fc.constantFrom(' ', '\n', '\t', '\u00a0')).chain(([c, pad]) => fc.constantFrom(pad + c, c + pad)),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('/')),
  hugeString,
);
/** Strings that are not aa:bb:cc:dd:ee:ff (and not empty). */
const badMac: fc.Arbitrary<string> = fc.oneof(
  goodMac.map((m) => m.replaceAll(':', '-')),
  goodMac.map((m) => m.replaceAll(':', '')),
  goodMac.map((m) => m.slice(3)),
  goodMac.map((m) => m + ':00'),
  goodMac.map((m) => m + '\n'),
  goodMac.map((m) => ' ' + m),
  fc.tuple(goodMac, fc.constantFrom('g', 'z', 'G', ' ', 'ü'), fc.integer({ min: 0, max: 5 })).map(([m, c, i]) => m.slice(0, i * 3) + c + m.slice(i * 3 + 1)),
  fc.tuple(goodMac, fc.integer({ min: 0, max: 5 })).map(([m, i]) => m.slice(0, i * 3) + '0' + m.slice(i * 3)),
  fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(s)),
);

const badIpamEntry: fc.Arbitrary<Json> = fc.oneof(
  scalarsNotString,
  fc.string({ maxLength: 10 }),
  goodIpam.chain((e) =>
    fc.oneof(
      badCidr.map((c) => ({ ...e, Pool: c })),
      fc.constant({ ...e, Pool: '' }),
      notString.filter((x) => typeof x !== 'string').map((x) => ({ ...e, Pool: x })),
      badCidr.map((c) => ({ ...e, Gateway: c })),
      fc.tuple(plainKey, badCidr).map(([k, c]) => ({ ...e, AuxAddresses: { ...(e.AuxAddresses ?? {}), [k]: c } })),
      notObject.map((x) => ({ ...e, AuxAddresses: x })),
      fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 2 })).map((x) => ({ ...e, AddressSpace: x })),
    ),
  ),
);

const badValue: Record<Slot, fc.Arbitrary<Json> | undefined> = {
  id: badId,
  sandboxKey: fc.oneof(notString, fc.integer({ min: 4097, max: 100_000 }).map((n) => '/'.repeat(n))),
  options: notObject,
  stringMap: fc.oneof(
    notObject,
    fc.tuple(plainKey, fc.oneof(scalarsNotString, fc.array(jsonValue, { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), jsonValue, { maxKeys: 2 }))).map(([k, x]) => ({ [k]: x })),
  ),
  ipamList: fc.oneof(
    notObject,
    fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 3 }),
    fc.tuple(fc.array(goodIpam, { maxLength: 2 }), badIpamEntry, fc.nat()).map(([list, bad, at]) => {
      const out: Json[] = [...(list as Json[])];
      out.splice(at % (out.length + 1), 0, bad);
      return out;
    }),
  ),
  iface: fc.oneof(
    notObject,
    goodValue.iface.chain((i) => {
      const base = (i ?? {}) as Record<string, Json>;
      return fc.oneof(
        badCidr.map((c) => ({ ...base, Address: c })),
        badCidr.map((c) => ({ ...base, AddressIPv6: c })),
        badMac.map((m) => ({ ...base, MacAddress: m })),
        fc.tuple(fc.constantFrom('Address', 'AddressIPv6', 'MacAddress'), notString).map(([k, x]) => ({ ...base, [k]: x })),
      );
    }),
  ),
  discoveryType: fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.integer(), { maxLength: 2 }),
    fc.dictionary(fc.string({ maxLength: 4 }), jsonValue, { maxKeys: 2 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  ),
  any: undefined,
};

interface BadRequest {
  method: Method;
  body: string;
  note: string;
}

const enc = (v: Json) => JSON.stringify(v);

/** Counterexamples print at most 300 characters of a body. */
function short<T extends object>(value: T, label: string, body: string | Uint8Array): T {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body.slice(0, 300));
  const size = typeof body === 'string' ? `${body.length} characters` : `${body.length} bytes`;
  return Object.assign(value, { [fc.toStringMethod]: () => `${label}: ${JSON.stringify(text.slice(0, 300))} (${size})` });
}

/** A structurally plausible body of `m`, broken in one way that the protocol forbids. */
function badBody(m: Method): fc.Arbitrary<BadRequest> {
  const spec = fields[m];
  const keys = Object.keys(spec);
  const required = keys.filter((k) => spec[k]!.required);
  const mutations: fc.Arbitrary<BadRequest>[] = [];
  const make = (note: string, body: string): BadRequest => short({ method: m, body, note }, `${m}, ${note}`, body);
  // a field with a value of the wrong type or shape
  const breakable = keys.filter((k) => badValue[spec[k]!.slot] !== undefined);
  if (breakable.length > 0) {
    mutations.push(
      fc.tuple(goodBody(m), fc.constantFrom(...breakable)).chain(([b, k]) => badValue[spec[k]!.slot]!.map((x) => make(`bad ${k}`, enc({ ...b, [k]: x }) + '\n'))),
    );
  }
  // a non-object body
  mutations.push(
    fc.oneof(scalarsNotString, fc.string({ maxLength: 30 })).map((x) => make('not an object', enc(x))),
    fc.constantFrom('null', 'null\n', 'true', '0', '-0', '1e400', '"{}"', '""').map((t) => make('not an object', t)),
  );
  if (required.length > 0) {
    // a required field left out, or spelled in another case (Go would take it; this host does not)
    mutations.push(
      fc.tuple(goodBody(m), fc.constantFrom(...required), fc.constantFrom('drop', 'lower', 'upper', 'suffixed')).map(([b, k, how]) => {
        const { [k]: v, ...rest } = b;
        const renamed = how === 'drop' ? {} : { [how === 'lower' ? k.toLowerCase() : how === 'upper' ? k.toUpperCase() : `${k}_`]: v as Json };
        return make(`${how} ${k}`, enc({ ...rest, ...renamed }) + '\n');
      }),
      // a required field nested one level too deep
      fc.tuple(goodBody(m), fc.constantFrom(...required.filter((k) => spec[k]!.slot !== 'any')), fc.constantFrom('array', 'object')).map(([b, k, how]) =>
        make(`nested ${k}`, enc({ ...b, [k]: how === 'array' ? [b[k]!] : { [k]: b[k]! } }) + '\n'),
      ),
      // the whole body wrapped: in a list, in an object, twice
      goodBody(m).chain((b) => fc.constantFrom(make('wrapped in a list', enc([b])), make('wrapped', enc({ Request: b })), make('wrapped twice', enc([[b]])), make('empty list', '[]'))),
      // the body behind prototype-pollution keys: own "__proto__" and "constructor" keys of JSON.parse's result
      goodBody(m).chain((b) => {
        const t = enc(b);
        const [k0] = required;
        const { [k0!]: moved, ...rest } = b;
        return fc.constantFrom(
          make('__proto__', `{"__proto__":${t}}`),
          make('constructor.prototype', `{"constructor":{"prototype":${t}}}`),
          make('__proto__ and prototype', `{"__proto__":${t},"prototype":${t},"constructor":${t}}`),
          make(`${k0} only in __proto__`, `{${enc(rest).slice(1, -1)}${Object.keys(rest).length > 0 ? ',' : ''}"__proto__":{"${k0}":${enc(moved ?? null)}}}`),
        );
      }),
      // empty and whitespace-only bodies read as {}, which lacks the required fields
      fc.constantFrom('', ' ', '\n', '\r\n\t ', '\u00a0', '\ufeff').map((t) => make('empty', t)),
    );
  }
  return fc.oneof(...mutations);
}

/** What a body of `m` must answer given its text, per plugin-app.ts's readJson and the schemas; undefined if it might be valid. */
function expectedForText(m: Method, text: string): RegExp | string | undefined {
  if (text.trim() === '') return hasRequired(m) ? new RegExp(`^invalid ${m} request: `) : undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'request body is not JSON';
  }
  if (value !== null && typeof value === 'object') {
    if (!hasRequired(m)) return undefined;
    if (Object.keys(value).some((k) => fieldNames.has(k))) return undefined;
  }
  return new RegExp(`^invalid ${m} request: `);
}

// ---------------------------------------------------------------------------

describe('protocol fuzzing against the app in-process', () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
    await populate(w);
  });
  after(() => w.store.close());

  test('random bytes, truncated JSON and non-JSON bodies to every method: 400, no driver call, no state change', async () => {
    const valid = (m: Method) => goodBody(m).map((b) => JSON.stringify(b));
    const body = fc.constantFrom(...methods).chain((m) =>
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }).map((bytes) => ({ m, bytes, kind: 'random bytes' })),
        // a strict prefix of a well-formed body is never JSON (the object is not closed)
        valid(m).chain((t) => fc.integer({ min: 1, max: Math.max(1, t.length - 1) }).map((n) => ({ m, bytes: new TextEncoder().encode(t.slice(0, n)), kind: 'truncated JSON' }))),
        // the same with multi-byte characters in it, cut anywhere (inside a sequence, too)
        valid(m).chain((t) => {
          const b = new TextEncoder().encode(t.slice(0, -1) + (t === '{}' ? '' : ',') + '"zz":"é€😀"}');
          return fc.integer({ min: 1, max: b.length - 1 }).map((n) => ({ m, bytes: b.slice(0, n), kind: 'truncated UTF-8' }));
        }),
        fc.oneof(
          valid(m).map((t) => t + '}'),
          valid(m).map((t) => t + t),
          valid(m).map((t) => t.replace(/"/g, "'")),
          valid(m).map((t) => t.replace(/}$/, ',}')),
          valid(m).map((t) => `/* c */${t}`),
          valid(m).map((t) => new URLSearchParams(JSON.parse(t) as Record<string, string>).toString() || 'a=b'),
          valid(m).map((t) => `<xml>${t}</xml>`),
          fc.constantFrom('NaN', 'Infinity', 'undefined', '{NetworkID: "a"}', '{"NetworkID": 0x1}', '[1,]', '{"a":1', '\u0000', 'nul', '{"a":"\\x41"}', '{"a":"\\ud800"'),
          fc.string({ minLength: 1, maxLength: 200, unit: 'binary' }),
        ).map((t) => ({ m, bytes: new TextEncoder().encode(t), kind: 'not JSON' })),
        // UTF-16 with a byte order mark, as a Windows client might send it
        valid(m).map((t) => {
          const u16 = new Uint8Array(2 + t.length * 2);
          u16.set([0xff, 0xfe]);
          for (let i = 0; i < t.length; i++) {
            u16[2 + i * 2] = t.charCodeAt(i) & 0xff;
            u16[3 + i * 2] = t.charCodeAt(i) >> 8;
          }
          return { m, bytes: u16, kind: 'UTF-16' };
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(body, async ({ m, bytes, kind }) => {
        const text = new TextDecoder().decode(bytes);
        const expected = expectedForText(m, text);
        fc.pre(expected !== undefined);
        await expectRefused(w, `garbage body (${kind})`, 'POST', `/NetworkDriver.${m}`, bytes, 400, expected!);
      }),
      fcParams(3000),
    );
  });

  test('structurally plausible bodies with wrong types, missing fields, extra nesting, huge strings, bad IDs, CIDRs and MACs, pollution keys: 400', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods).chain((m) => badBody(m)),
        async ({ method, body }) => {
          await expectRefused(w, 'plausible but invalid', 'POST', `/NetworkDriver.${method}`, body, 400, new RegExp(`^invalid ${method} request: `));
        },
      ),
      fcParams(5000),
    );
  });

  test('bodies over the size limit, to any path and with any content, even a valid request: 413', async () => {
    const paths = ['/Plugin.Activate', '/NetworkDriver.GetCapabilities', ...methods.map((m) => `/NetworkDriver.${m}`), '/NetworkDriver.Nope', '/x'];
    const arb = fc.record({
      path: fc.constantFrom(...paths),
      httpMethod: fc.constantFrom('POST', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE'),
      over: fc.integer({ min: 1, max: 64 * 1024 }),
      // padding after a well-formed body, or a repeated chunk of anything
      content: fc.oneof(
        fc.constant(JSON.stringify({ NetworkID: N1, EndpointID: E1 })),
        fc.constant(JSON.stringify({ NetworkID: E2, Options: {}, IPv4Data: [], IPv6Data: [] })),
        fc.string({ minLength: 1, maxLength: 64 }),
      ),
      pad: fc.constantFrom(' ', '\n', 'x', '\u0000'),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ path, httpMethod, over, content, pad }) => {
        const total = maxBody + over;
        const bytes = new Uint8Array(total);
        const head = new TextEncoder().encode(content).slice(0, total);
        bytes.fill(pad.charCodeAt(0));
        bytes.set(head);
        await expectRefused(w, 'oversized', httpMethod, path, bytes, 413, `request body over ${maxBody} bytes`);
      }),
      fcParams(300),
    );
  });

  test('the size limit is exact: a valid request of exactly the limit is served, one byte more is refused', async () => {
    const text = JSON.stringify({ NetworkID: '7'.repeat(64) });
    const exact = new Uint8Array(maxBody).fill(0x20);
    exact.set(new TextEncoder().encode(text));
    const calls = w.calls.length;
    assert.deepEqual(await send(w.app, 'POST', '/NetworkDriver.DeleteNetwork', exact), { status: 200, json: {} });
    assert.deepEqual(w.calls.slice(calls), ['deleteNetwork']);
    const over = new Uint8Array(maxBody + 1).fill(0x20);
    over.set(new TextEncoder().encode(text));
    await expectRefused(w, 'oversized', 'POST', '/NetworkDriver.DeleteNetwork', over, 413, `request body over ${maxBody} bytes`);
  });

  test('unknown paths and HTTP methods other than POST: 404 naming the method and path', async () => {
    const known = new Set(['/Plugin.Activate', '/NetworkDriver.GetCapabilities', ...methods.map((m) => `/NetworkDriver.${m}`)]);
    const urlSafe = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~'.split(''));
    const segment = fc.string({ unit: urlSafe, minLength: 1, maxLength: 24 });
    const nearMiss = fc.constantFrom(...known).chain((p) =>
      fc.constantFrom(p + '/', p + 'x', p.toLowerCase(), p.toUpperCase(), p.replace('.', '/'), p.replace('.', ''), `/v1${p}`, `/v1.2${p}`, p.replace('NetworkDriver', 'IpamDriver'), `${p}/extra`, p.slice(0, -1)),
    );
    const unknownPath = fc.oneof(
      nearMiss,
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/')),
      segment.map((s) => `/NetworkDriver.${s}`),
      segment.map((s) => `/Plugin.${s}`),
      fc.constantFrom('/', '/NetworkDriver', '/NetworkDriver.', '/Plugin.Deactivate', '/VolumeDriver.Create', '/IpamDriver.RequestPool', '/NetworkDriver.getcapabilities', '/plugin.activate', '/..', '/.'),
    );
    const arb = fc.oneof(
      // POST to a path that serves nothing
      fc.tuple(fc.constant('POST'), unknownPath.filter((p) => !known.has(p))),
      // another HTTP method on a path that is served
      fc.tuple(fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), fc.constantFrom(...known)),
      fc.tuple(fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH'), unknownPath),
    );
    await fc.assert(
      fc.asyncProperty(arb, fc.option(fc.constantFrom(JSON.stringify({ NetworkID: N1, EndpointID: E1 }), '{}', 'junk'), { nil: undefined }), async ([httpMethod, path], body) => {
        const withBody = httpMethod === 'GET' ? undefined : body;
        // The path as URL parsing leaves it ('/..' and '/.' resolve to '/').
        const seen = new URL(path, 'http://localhost').pathname;
        await expectRefused(w, 'unknown path or HTTP method', httpMethod, path, withBody, 404, `unknown method ${httpMethod} ${seen}`);
      }),
      fcParams(1500),
    );
  });

  test('Plugin.Activate and GetCapabilities ignore whatever body comes along, and call no driver', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string().map((s) => new TextEncoder().encode(s))), async (activate, bytes) => {
        const before = snapshot(w.store);
        const calls = w.calls.length;
        const r = await send(w.app, 'POST', activate ? '/Plugin.Activate' : '/NetworkDriver.GetCapabilities', bytes);
        assert.deepEqual(r, activate ? { status: 200, json: { Implements: ['NetworkDriver'] } } : { status: 200, json: { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: true } });
        assert.equal(w.calls.length, calls);
        assert.equal(snapshot(w.store), before);
      }),
      fcParams(200),
    );
  });

  test('GwAllocCheck on a driver without gw-alloc-checker: 404 whatever the body', async () => {
    const plain = await makeWorld({ gwAllocChecker: false });
    try {
      await populate(plain);
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), goodBody('GwAllocCheck').map((b) => new TextEncoder().encode(JSON.stringify(b)))), async (bytes) => {
          await expectRefused(plain, 'GwAllocCheck without checker', 'POST', '/NetworkDriver.GwAllocCheck', bytes, 404, 'driver fake does not check gateway allocation');
        }),
        fcParams(300),
      );
    } finally {
      plain.store.close();
    }
  });

  test('values nested 500,000 deep: refused where a string is expected, served where any JSON is (JSON.parse and stringify do not recurse)', async () => {
    const deep = '['.repeat(500_000) + ']'.repeat(500_000);
    await expectRefused(w, 'deeply nested', 'POST', '/NetworkDriver.DeleteNetwork', `{"NetworkID":${deep}}`, 400, /^invalid DeleteNetwork request: NetworkID: /);
    await expectRefused(w, 'deeply nested', 'POST', '/NetworkDriver.Join', `{"NetworkID":"${N1}","EndpointID":"${E1}","SandboxKey":${deep}}`, 400, /^invalid Join request: SandboxKey: /);
    await expectRefused(w, 'deeply nested', 'POST', '/NetworkDriver.CreateNetwork', deep, 400, /^invalid CreateNetwork request: /);
    const before = snapshot(w.store);
    const calls = w.calls.length;
    // DiscoveryData is any JSON and not looked at; option values are any JSON, re-encoded for the driver.
    assert.deepEqual(await send(w.app, 'POST', '/NetworkDriver.DiscoverNew', `{"DiscoveryType":1,"DiscoveryData":${deep}}`), { status: 200, json: {} });
    assert.deepEqual(await send(w.app, 'POST', '/NetworkDriver.ProgramExternalConnectivity', `{"NetworkID":"${N1}","EndpointID":"${E1}","Options":{"x":${deep}}}`), { status: 200, json: {} });
    assert.deepEqual(w.calls.slice(calls), ['programExternalConnectivity']);
    assert.equal(snapshot(w.store), before);
  });
});

// ---------------------------------------------------------------------------
// Out-of-order sequences of well-formed requests, against a model of the fake
// driver and of the scopes DriverHost records.

type Op =
  | { op: 'CreateNetwork' | 'DeleteNetwork' | 'AllocateNetwork' | 'FreeNetwork'; n: number; pool: number }
  | { op: 'CreateEndpoint' | 'DeleteEndpoint' | 'Join' | 'Leave' | 'EndpointOperInfo' | 'ProgramExternalConnectivity' | 'RevokeExternalConnectivity'; n: number; e: number; mac: boolean; key: number };

const nets = ['1', '2', '3'].map((c) => c.repeat(64));
const eps = ['a', 'b', 'c'].map((c) => c.repeat(64));
const sandboxKeyOf = (k: number) => `/var/run/docker/netns/sb${k}`;
const poolOf = (p: number) => `10.${p}.0.0/24`;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('CreateNetwork', 'DeleteNetwork', 'AllocateNetwork', 'FreeNetwork' as const), n: fc.integer({ min: 0, max: 2 }), pool: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    op: fc.constantFrom('CreateEndpoint', 'DeleteEndpoint', 'Join', 'Leave', 'EndpointOperInfo', 'ProgramExternalConnectivity', 'RevokeExternalConnectivity' as const),
    n: fc.integer({ min: 0, max: 2 }),
    e: fc.integer({ min: 0, max: 2 }),
    mac: fc.boolean(),
    key: fc.integer({ min: 0, max: 3 }),
  }),
) as fc.Arbitrary<Op>;

class Model {
  networks = new Map<string, string>(); // nid -> pool given at creation
  endpoints = new Map<string, string>(); // nid/eid -> mac
  joins = new Map<string, string>(); // nid/eid -> sandbox key
  gateways = new Set<string>(); // nid/eid
  allocs = new Set<string>();
  // What DriverHost writes into the scopes tables.
  pools = new Map<string, string>(); // nid -> pool
  sandboxes = new Map<string, string>(); // nid/eid -> key

  /** Applies op; returns the answer it must get. */
  apply(o: Op): { status: number; json: Record<string, unknown> } | { errMatch: RegExp } {
    const nid = nets[o.n]!;
    const ok = (json: Record<string, unknown> = {}) => ({ status: 200, json });
    const err = (re: RegExp) => ({ errMatch: re });
    switch (o.op) {
      case 'CreateNetwork':
        if (this.networks.has(nid)) {
          // The driver refuses; the scopes of the network it keeps are left as they were.
          return err(/^create-network: network \w+ already exists$/);
        }
        this.networks.set(nid, poolOf(o.pool));
        this.pools.set(nid, poolOf(o.pool));
        return ok();
      case 'DeleteNetwork': {
        // dockerd forgets the network whatever the driver answers, and so does the host.
        this.forgetScopes(nid);
        if (!this.networks.has(nid)) return ok();
        if ([...this.endpoints.keys()].some((k) => k.startsWith(`${nid}/`))) return err(/^delete-network: network \w+ has endpoints$/);
        this.networks.delete(nid);
        return ok();
      }
      case 'AllocateNetwork':
        this.allocs.add(nid);
        return ok({ Options: { allocated: nid } });
      case 'FreeNetwork':
        this.allocs.delete(nid);
        return ok();
    }
    const eid = eps[o.e]!;
    const k = `${nid}/${eid}`;
    switch (o.op) {
      case 'CreateEndpoint': {
        if (!this.networks.has(nid)) return err(/^create-endpoint: network \w+ not found$/);
        if (this.endpoints.has(k)) return err(/^create-endpoint: endpoint \w+ already exists$/);
        const mac = o.mac ? '02:00:00:00:00:0' + o.e : macOf(eid);
        this.endpoints.set(k, mac);
        return ok(o.mac ? {} : { Interface: { Address: '', AddressIPv6: '', MacAddress: mac } });
      }
      case 'DeleteEndpoint':
        if (!this.endpoints.has(k)) return ok();
        if (this.joins.has(k)) return err(/^delete-endpoint: endpoint \w+ is joined$/);
        this.endpoints.delete(k);
        this.gateways.delete(k);
        return ok();
      case 'Join':
        if (!this.endpoints.has(k)) {
          this.sandboxes.delete(k);
          return err(/^join: endpoint \w+ not found$/);
        }
        if (this.joins.has(k)) {
          // The driver refuses; the live join keeps its sandbox in scope.
          return err(/^join: endpoint \w+ is already joined$/);
        }
        this.joins.set(k, sandboxKeyOf(o.key));
        this.sandboxes.set(k, sandboxKeyOf(o.key));
        return ok({ InterfaceName: { SrcName: `fz${eid.slice(0, 8)}`, DstPrefix: 'eth', DstName: '' } });
      case 'Leave':
        this.sandboxes.delete(k);
        this.joins.delete(k);
        return ok();
      case 'EndpointOperInfo':
        if (!this.endpoints.has(k)) return err(/^endpoint-oper-info: endpoint \w+ not found$/);
        return ok({ Value: { 'com.docker.network.endpoint.macaddress': this.endpoints.get(k) } });
      case 'ProgramExternalConnectivity':
        if (!this.endpoints.has(k)) return err(/^program-external-connectivity: endpoint \w+ not found$/);
        this.gateways.add(k);
        return ok();
      case 'RevokeExternalConnectivity':
        this.gateways.delete(k);
        return ok();
    }
  }

  private forgetScopes(nid: string): void {
    this.pools.delete(nid);
    for (const k of [...this.sandboxes.keys()]) if (k.startsWith(`${nid}/`)) this.sandboxes.delete(k);
  }

  kv(): [string, string][] {
    const out: [string, string][] = [];
    for (const [nid, pool] of this.networks) out.push([`network/${nid}`, JSON.stringify({ pools: [pool] })]);
    for (const [k, mac] of this.endpoints) out.push([`endpoint/${k}`, JSON.stringify({ mac })]);
    for (const [k, key] of this.joins) out.push([`join/${k}`, JSON.stringify({ sandboxKey: key })]);
    for (const k of this.gateways) out.push([`gateway/${k}`, '{}']);
    for (const nid of this.allocs) out.push([`alloc/${nid}`, '{}']);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

function bodyOf(o: Op): Record<string, unknown> {
  const nid = nets[o.n]!;
  switch (o.op) {
    case 'CreateNetwork':
    case 'AllocateNetwork':
      return { NetworkID: nid, Options: o.op === 'AllocateNetwork' ? {} : { 'com.docker.network.enable_ipv6': false }, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: poolOf(o.pool), Gateway: poolOf(o.pool).replace('0/24', '1/24') }], IPv6Data: [] };
    case 'DeleteNetwork':
    case 'FreeNetwork':
      return { NetworkID: nid };
  }
  const eid = eps[o.e]!;
  switch (o.op) {
    case 'CreateEndpoint':
      return { NetworkID: nid, EndpointID: eid, Interface: { Address: '10.0.0.2/24', AddressIPv6: '', MacAddress: o.mac ? '02:00:00:00:00:0' + o.e : '' }, Options: {} };
    case 'Join':
      return { NetworkID: nid, EndpointID: eid, SandboxKey: sandboxKeyOf(o.key), Options: {} };
    case 'ProgramExternalConnectivity':
      return { NetworkID: nid, EndpointID: eid, Options: {} };
    default:
      return { NetworkID: nid, EndpointID: eid };
  }
}

function scopesOf(store: SqliteStateStore): { pools: [string, string][]; sandboxes: [string, string][] } {
  const db = (store as unknown as { db: DatabaseSync }).db;
  const pools = (db.prepare("SELECT nid, cidr FROM network_pools WHERE driver = 'fake' ORDER BY nid, cidr").all() as { nid: string; cidr: string }[]).map((r) => [r.nid, r.cidr] as [string, string]);
  const sandboxes = (db.prepare("SELECT nid, eid, key FROM sandboxes WHERE driver = 'fake' ORDER BY nid, eid").all() as { nid: string; eid: string; key: string }[]).map((r) => [`${r.nid}/${r.eid}`, r.key] as [string, string]);
  return { pools, sandboxes };
}

describe('out-of-order sequences of well-formed requests', () => {
  test('any order of calls on a few IDs: never a crash, answers and stored state follow the model, deletes of unknown IDs answer {}', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40, size: '+1' }), async (ops) => {
        const w = await makeWorld();
        try {
          const model = new Model();
          for (const [i, o] of ops.entries()) {
            const expected = model.apply(o);
            const r = await send(w.app, 'POST', `/NetworkDriver.${o.op}`, JSON.stringify(bodyOf(o)) + '\n');
            count('out-of-order');
            const where = `step ${i} ${JSON.stringify(o)}`;
            if ('errMatch' in expected) {
              assert.equal(r.status, 200, `${where}: ${JSON.stringify(r.json)}`);
              assert.deepEqual(Object.keys(r.json), ['Err'], `${where}: ${JSON.stringify(r.json)}`);
              assert.match(String(r.json.Err), expected.errMatch, where);
            } else {
              assert.deepEqual(r, expected, where);
            }
            assert.deepEqual(w.kv.entries(''), model.kv(), `${where}: driver state`);
            const scopes = scopesOf(w.store);
            assert.deepEqual(scopes.pools, [...model.pools].sort(), `${where}: pools in scope`);
            assert.deepEqual(scopes.sandboxes, [...model.sandboxes].sort(), `${where}: sandboxes in scope`);
          }
        } finally {
          w.store.close();
        }
      }),
      fcParams(300),
    );
  });

  test('deletes, leaves, frees and revokes of IDs never created, twice over, before anything else: {}', async () => {
    const w = await makeWorld();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('DeleteNetwork', 'DeleteEndpoint', 'Leave', 'FreeNetwork', 'RevokeExternalConnectivity'),
          fc.string({ unit: alnum, minLength: 1, maxLength: 64 }),
          fc.string({ unit: alnum, minLength: 1, maxLength: 64 }),
          async (m, nid, eid) => {
            const before = snapshot(w.store);
            for (let i = 0; i < 2; i++) {
              const r = await send(w.app, 'POST', `/NetworkDriver.${m}`, JSON.stringify({ NetworkID: nid, EndpointID: eid }) + '\n');
              count('out-of-order');
              assert.deepEqual(r, { status: 200, json: {} }, `${m} ${nid} ${eid}`);
            }
            assert.equal(snapshot(w.store), before);
          },
        ),
        fcParams(300),
      );
    } finally {
      w.store.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Findings of the fuzzer, kept as tests of the fixed behaviour.

describe('findings, fixed', () => {
  test('a refused duplicate CreateNetwork leaves the scopes of the existing network alone', async () => {
    const w = await makeWorld();
    try {
      await populate(w);
      const before = scopesOf(w.store);
      const r = await send(w.app, 'POST', '/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: N1, Options: {}, IPv4Data: [{ Pool: '192.168.0.0/16' }], IPv6Data: [] }));
      assert.match(String(r.json.Err), /already exists/);
      assert.deepEqual(scopesOf(w.store), before);
    } finally {
      w.store.close();
    }
  });

  test('a refused second Join of a joined endpoint leaves the live join in scope', async () => {
    const w = await makeWorld();
    try {
      await populate(w);
      const before = scopesOf(w.store);
      const r = await send(w.app, 'POST', '/NetworkDriver.Join', JSON.stringify({ NetworkID: N1, EndpointID: E1, SandboxKey: '/var/run/docker/netns/other', Options: {} }));
      assert.match(String(r.json.Err), /already joined/);
      assert.deepEqual(scopesOf(w.store), before);
    } finally {
      w.store.close();
    }
  });

  /** The requests among `cases` that are not refused with 400, with their answers. */
  async function notRefused(cases: (readonly [Method, string])[]): Promise<string[]> {
    const w = await makeWorld();
    try {
      const out: string[] = [];
      for (const [m, body] of cases) {
        const r = await send(w.app, 'POST', `/NetworkDriver.${m}`, body);
        if (r.status !== 400) out.push(`${m} ${body} -> ${r.status} ${JSON.stringify(r.json)}`);
      }
      return out;
    } finally {
      w.store.close();
    }
  }

  test('a JSON list where an object is expected is refused', async () => {
    const nid = (i: number) => String(i).repeat(64);
    assert.deepEqual(
      await notRefused([
        ['GwAllocCheck', '[]'],
        ['GwAllocCheck', '{"Options":["x"]}'],
        ['CreateNetwork', JSON.stringify({ NetworkID: nid(3), Options: ['x'], IPv4Data: [], IPv6Data: [] })],
        ['CreateNetwork', JSON.stringify({ NetworkID: nid(4), IPv4Data: [[]] })],
        ['CreateNetwork', JSON.stringify({ NetworkID: nid(5), IPv4Data: [{ Pool: '10.0.0.0/24', AuxAddresses: ['10.0.0.5/24'] }] })],
        ['AllocateNetwork', JSON.stringify({ NetworkID: nid(6), Options: ['x'] })],
        ['CreateEndpoint', JSON.stringify({ NetworkID: N1, EndpointID: E2, Interface: [] })],
      ]),
      [],
    );
  });

  test('CIDRs that Go would never print (and net.ParseCIDR refuses) are refused', async () => {
    const pools = ['0x0a.0.0.0/8', '010.0.0.0/8', '10/8', '10.1/16', 'fe80::1%eth0/64'];
    assert.deepEqual(await notRefused(pools.map((pool, i) => ['CreateNetwork', JSON.stringify({ NetworkID: String(i + 3).repeat(64), IPv4Data: [{ Pool: pool }] })] as const)), []);
  });
});

// ---------------------------------------------------------------------------
// Raw malformed HTTP against the real host, over its unix socket.

const bridge = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.wasm');
const rawReason = process.getuid?.() !== 0 ? 'needs root (the host runs the bridge driver in a private network namespace)' : !existsSync(bridge) ? `needs the built bridge driver (${bridge}); run npm run build` : undefined;

/** Sends bytes on a fresh connection, half-closes, and collects what comes back until the host closes (or `waitMs`). */
function rawExchange(socketPath: string, bytes: Uint8Array, waitMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ path: socketPath });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(finish, waitMs);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', finish);
    s.on('connect', () => s.end(Buffer.from(bytes)));
  });
}

/** The HTTP responses in `reply` (status and body), read loosely: a host may answer several pipelined requests. */
function parseResponses(reply: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let rest = reply;
  while (rest.startsWith('HTTP/1.1 ')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.slice(0, headEnd);
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    let body = '';
    let next = headEnd + 4;
    if (cl) {
      body = rest.slice(next, next + Number(cl[1]));
      next += Number(cl[1]);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      let p = next;
      for (;;) {
        const eol = rest.indexOf('\r\n', p);
        if (eol < 0) break;
        const size = parseInt(rest.slice(p, eol), 16);
        if (!(size > 0)) {
          p = eol + 4;
          break;
        }
        body += rest.slice(eol + 2, eol + 2 + size);
        p = eol + 2 + size + 2;
      }
      next = p;
    }
    out.push({ status, body });
    rest = rest.slice(next);
  }
  return out;
}

if (rawReason) {
  console.log(`protocol fuzz: raw socket property skipped: ${rawReason}`);
  test('raw malformed HTTP against the real host over its unix socket', { skip: rawReason }, () => {});
} else describe('raw malformed HTTP against the real host over its unix socket', () => {
  const ns = `wasmnet-fz-${randomBytes(3).toString('hex')}`;
  // Made in before(), so that nothing is left behind when a name filter skips this suite.
  let dir: string;
  let host: WasmnetHost;
  const links = () => execFileSync('ip', ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
  const dbSnapshot = () => {
    const db = new DatabaseSync(join(dir, 'state', 'state.db'), { readOnly: true });
    try {
      const out: Record<string, string[]> = {};
      for (const t of ['kv', 'owned_links', 'network_pools', 'sandboxes']) out[t] = db.prepare(`SELECT * FROM "${t}"`).all().map((r) => JSON.stringify(r)).sort();
      out.audit = [String((db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n)];
      return JSON.stringify(out);
    } finally {
      db.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasmnet-fuzz-'));
    host = new WasmnetHost({ socketDir: join(dir, 'plugins'), stateDir: join(dir, 'state'), name: 'wasmnet-fuzz', netns: ns });
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await host.start();
  });

  after(async () => {
    await host?.dispose();
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never made: before() failed first
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('500 raw malformed requests: the host stays up, answers each with a 4xx or closes, changes nothing, and answers GetCapabilities after', async () => {
    const sock = host.socketPath;
    const caps = { status: 200, json: { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false } };
    assert.deepEqual(await callPlugin(sock, '/NetworkDriver.GetCapabilities'), caps);
    // Something in the store, so that "unchanged" means something: a network with its bridge.
    const created = await callPlugin(sock, '/NetworkDriver.CreateNetwork', {
      NetworkID: N1,
      Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': 'wnfz0' } },
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.66.0.0/24', Gateway: '10.66.0.1/24' }],
      IPv6Data: [],
    });
    assert.deepEqual(created, { status: 200, json: {} });
    const linksBefore = links();
    const dbBefore = dbSnapshot();

    const te = new TextEncoder();
    const methodPath = fc.constantFrom(...withRequired).map((m) => `/NetworkDriver.${m}`);
    const head = (path: string, extra: string) => `POST ${path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n${extra}`;
    const validBody = (path: string) => JSON.stringify(path.endsWith('Network') || path.endsWith('FreeNetwork') ? { NetworkID: N1 } : { NetworkID: N1, EndpointID: E1, SandboxKey: '/k', DiscoveryType: 1, DiscoveryData: {} }) + '\n';
    // appAnswers: the request is complete HTTP and reaches the app, whose answer must be 400 {"Err"}.
    // Otherwise Node's HTTP parser answers 4xx without a body, or the host closes the connection
    // of a request that never completed.
    const arb = fc.oneof(
      // a well-formed HTTP request whose body is not JSON
      fc.tuple(methodPath, fc.string({ minLength: 1, maxLength: 100 })).filter(([, b]) => {
        try {
          JSON.parse(b);
          return false;
        } catch {
          return b.trim() !== '';
        }
      }).map(([p, b]) => ({ kind: 'bad JSON', bytes: te.encode(head(p, `Content-Length: ${te.encode(b).length}\r\n\r\n`) + b), appAnswers: true })),
      // valid JSON of the wrong shape
      fc.tuple(methodPath, fc.constantFrom('null', '[]', '{}', '"x"', '{"NetworkID":"../x","EndpointID":1}')).map(([p, b]) => ({ kind: 'wrong shape', bytes: te.encode(head(p, `Content-Length: ${b.length}\r\n\r\n`) + b), appAnswers: true })),
      // a request cut anywhere before its end (the host waits, then sees the connection close)
      methodPath.chain((p) => {
        const full = te.encode(head(p, `Content-Length: ${te.encode(validBody(p)).length}\r\n\r\n`) + validBody(p));
        return fc.integer({ min: 0, max: full.length - 1 }).map((n) => ({ kind: 'truncated', bytes: full.slice(0, n), appAnswers: false }));
      }),
      // a Content-Length that lies or is not a number
      fc.tuple(methodPath, fc.constantFrom('abc', '-1', '1e3', '0x10', '', ' 12', '99999999999999999999999', '5, 6', '3')).map(([p, cl]) => {
        const b = validBody(p);
        return { kind: 'bad Content-Length', bytes: te.encode(head(p, `Content-Length: ${cl}\r\n\r\n`) + b), appAnswers: false };
      }),
      fc.tuple(methodPath, fc.integer({ min: 1, max: 500 })).map(([p, more]) => {
        const b = validBody(p);
        return { kind: 'Content-Length too large', bytes: te.encode(head(p, `Content-Length: ${te.encode(b).length + more}\r\n\r\n`) + b), appAnswers: false };
      }),
      fc.tuple(methodPath, fc.integer({ min: 1, max: 1024 * 1024 * 1024 })).map(([p, more]) => ({
        kind: 'Content-Length over the limit',
        bytes: te.encode(head(p, `Content-Length: ${1024 * 1024 + more}\r\n\r\n`) + validBody(p)),
        appAnswers: false,
      })),
      fc.tuple(methodPath, fc.constantFrom('Content-Length: 2\r\nContent-Length: 3\r\n', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', 'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip\r\n')).map(([p, h]) => ({
        kind: 'conflicting framing',
        bytes: te.encode(head(p, `${h}\r\n`) + 'zz\r\n' + validBody(p) + '\r\n0\r\n\r\n'),
        appAnswers: false,
      })),
      // broken request lines and headers
      fc.tuple(methodPath, fc.constantFrom('POST', 'post', 'P0ST', 'GET', 'BREW'), fc.constantFrom('HTTP/1.1', 'HTTP/9.9', 'HTTP/1', '', 'HTTP/1.1 extra')).map(([p, m, v]) => ({
        kind: 'bad request line',
        bytes: te.encode(`${m} ${p} ${v}\r\nContent-Length: 0\r\n\r\n`),
        appAnswers: false,
      })),
      fc.tuple(methodPath, fc.constantFrom('Bad Header: x\r\n', 'NoColon\r\n', ': empty\r\n', 'X: a\rb\r\n', 'X: \u0000\r\n', `X: ${'a'.repeat(20_000)}\r\n`, ' folded: x\r\n')).map(([p, h]) => ({
        kind: 'bad header',
        bytes: te.encode(head(p, `${h}Content-Length: 0\r\n\r\n`)),
        appAnswers: false,
      })),
      fc.constantFrom('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '\r\n\r\n', 'GET /\n\n', '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000').map((t) => ({ kind: 'not HTTP/1.1', bytes: te.encode(t), appAnswers: false })),
      fc.uint8Array({ minLength: 1, maxLength: 400 }).map((bytes) => ({ kind: 'random bytes', bytes, appAnswers: false })),
    );

    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(arb, async ({ kind, bytes, appAnswers }) => {
        const reply = await rawExchange(sock, bytes);
        count('raw socket');
        assert.ok(host.running, `host died after ${kind}: ${host.logTail(20)}`);
        const responses = parseResponses(reply);
        const outcome = `${kind}: ${responses.map((r) => r.status).join(',') || (reply ? 'unparsed' : 'none')}`;
        statuses.set(outcome, (statuses.get(outcome) ?? 0) + 1);
        for (const r of responses) {
          assert.ok(r.status >= 400 && r.status < 500, `${kind} ${JSON.stringify(new TextDecoder().decode(bytes).slice(0, 200))}: status ${r.status} ${r.body.slice(0, 200)}`);
          // The app's answers are {"Err"}; Node's own HTTP parser answers 400/413/431 with no body.
          if (r.body !== '') assert.equal(typeof (JSON.parse(r.body) as { Err?: unknown }).Err, 'string', `${kind}: ${r.body.slice(0, 200)}`);
        }
        if (appAnswers) {
          assert.equal(responses.length, 1, `${kind}: ${JSON.stringify(reply.slice(0, 300))}`);
          assert.equal(responses[0]!.status, 400);
          assert.match(responses[0]!.body, /^\{"Err":"(request body is not JSON|invalid \w+ request: .*)"\}$/);
        }
      }),
      fcParams(500),
    );
    console.log(`protocol fuzz: raw answers by kind: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);

    assert.ok(host.running, 'host still running');
    assert.deepEqual(await callPlugin(sock, '/NetworkDriver.GetCapabilities'), caps);
    assert.deepEqual(await callPlugin(sock, '/Plugin.Activate'), { status: 200, json: { Implements: ['NetworkDriver'] } });
    assert.equal(links(), linksBefore, 'links in the namespace changed');
    assert.equal(dbSnapshot(), dbBefore, 'the host state store changed');
    // And it still works: tear the network down.
    assert.deepEqual(await callPlugin(sock, '/NetworkDriver.DeleteNetwork', { NetworkID: N1 }), { status: 200, json: {} });
  });
});

describe('fuzzing totals', () => {
  test('at least 10,000 malformed, oversized, wrongly typed and out-of-order requests were sent', () => {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const malformed = total - (counts['out-of-order'] ?? 0);
    console.log(`protocol fuzz: ${total} requests, ${malformed} of them malformed (seed ${seed}): ${JSON.stringify(counts)}`);
    assert.ok(total >= 10_000, `only ${total} requests`);
  });
});
