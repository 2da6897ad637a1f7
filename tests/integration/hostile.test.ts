// A hostile driver against the host's netlink policy (issue 3, point 6). In a
// private network namespace with host-like links (lo, an "eth0" with an
// address and the default route, a bridge "wnother" that the bundled bridge
// driver made and owns, and a bridge "hxforeign" made with `ip` under the
// hostile driver's own prefix), the host serves the hostile driver
// (drivers-wasm/testing/hostile). Each CreateNetwork makes it try one escape;
// its error message reports what the host answered. For every attempt:
//   - the driver was answered 'denied' ('rate-limited' for the rate limit);
//   - the audit log (admin API) has exactly one new refused call, of that
//     operation with those arguments;
//   - the namespace's link, address and route tables (`ip -j`) are the same
//     before and after.
// A policy hole found by these attempts stays listed in KNOWN_HOLES, where its
// test expects the escape to succeed (and fails once the broker refuses it, so
// that the entry is removed and the attempt held to 'denied' like the rest).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { callOk, callPlugin, requestJson } from '../lib/plugin-client.ts';
import { DENO_BIN, DENO_ENTRY, NODE_BIN, NODE_ENTRY, REPO_ROOT, WasmnetHost, defaultRuntime } from '../lib/wasmnet-host.ts';

const hostileComponent = join(REPO_ROOT, 'drivers-wasm/testing/hostile/build/hostile.wasm');
const bridgeComponent = join(REPO_ROOT, 'drivers-wasm/bridge/build/bridge.wasm');
const DRIVER = 'wasmnet-hostile';

const reason = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : undefined;

interface Attempt {
  name: string;
  what: string;
  /** The operation refused, and arguments it was called with (a subset), as the audit log records them. */
  op: string;
  args: Record<string, unknown>;
  /** The rule that refused it, as its audited reason says. */
  why: RegExp;
  expect?: 'denied' | 'rate-limited';
}

const NOT_OWNED = /was not created by this driver/;
const PREFIX = /outside the driver's prefix "hx"/;
const NOT_GRANTED = /not granted|not a parent link granted/;
const POOLS = /outside the pools of this driver's networks/;
const SANDBOX = /not a sandbox dockerd joined to this driver/;
const RATE = /over 50 netlink calls per second/;

const attempts: Attempt[] = [
  { name: 'delete-lo', what: 'delete lo', op: 'delete-link', args: { name: 'lo' }, why: NOT_OWNED },
  { name: 'delete-eth0', what: 'delete the host link eth0', op: 'delete-link', args: { name: 'eth0' }, why: NOT_OWNED },
  { name: 'rename-lo', what: 'rename lo (into its own prefix)', op: 'rename-link', args: { name: 'lo', newName: 'hxlo' }, why: NOT_OWNED },
  { name: 'rename-eth0', what: 'rename eth0 (into its own prefix)', op: 'rename-link', args: { name: 'eth0', newName: 'hxeth0' }, why: NOT_OWNED },
  { name: 'down-lo', what: 'set lo down', op: 'set-link-up', args: { name: 'lo', up: false }, why: NOT_OWNED },
  { name: 'down-eth0', what: 'set eth0 down', op: 'set-link-up', args: { name: 'eth0', up: false }, why: NOT_OWNED },
  { name: 'mtu-eth0', what: 'change the MTU of eth0', op: 'set-link-mtu', args: { name: 'eth0', mtu: 1280 }, why: NOT_OWNED },
  { name: 'mac-eth0', what: 'change the MAC of eth0', op: 'set-link-mac', args: { name: 'eth0', mac: '02:00:00:00:00:99' }, why: NOT_OWNED },
  { name: 'get-eth0', what: 'look at eth0', op: 'get-link', args: { name: 'eth0' }, why: NOT_OWNED },
  { name: 'addr-lo', what: 'add an address (inside its pool) to lo', op: 'add-address', args: { linkName: 'lo', cidr: '10.88.0.5/24' }, why: NOT_OWNED },
  { name: 'addr-eth0', what: 'add an address (inside its pool) to eth0', op: 'add-address', args: { linkName: 'eth0', cidr: '10.88.0.6/24' }, why: NOT_OWNED },
  { name: 'list-addr-eth0', what: "list eth0's addresses", op: 'list-addresses', args: { linkName: 'eth0' }, why: NOT_OWNED },
  { name: 'default-route-eth0', what: 'add a default route via eth0', op: 'add-route', args: { destination: '0.0.0.0/0', link: 'eth0' }, why: NOT_OWNED },
  { name: 'default-route-via-pool-gateway', what: 'add a default route via a gateway in its pool', op: 'add-route', args: { destination: '0.0.0.0/0', gateway: '10.88.0.1' }, why: POOLS },
  { name: 'delete-default-route', what: "delete the host's default route", op: 'delete-route', args: { destination: '0.0.0.0/0', gateway: '192.0.2.1' }, why: POOLS },
  { name: 'move-eth0', what: 'move eth0 into another namespace', op: 'move-link-to-sandbox', args: { name: 'eth0' }, why: NOT_OWNED },
  { name: 'move-lo', what: 'move lo into another namespace', op: 'move-link-to-sandbox', args: { name: 'lo' }, why: NOT_OWNED },
  { name: 'macvlan-on-eth0', what: 'create a macvlan on eth0, a parent not granted', op: 'create-macvlan', args: { name: 'hxmv0', parent: 'eth0' }, why: NOT_GRANTED },
  { name: 'create-outside-prefix', what: 'create a link outside its prefix (evil0)', op: 'create-bridge', args: { name: 'evil0' }, why: PREFIX },
  { name: 'veth-peer-outside-prefix', what: 'create a veth whose peer is outside its prefix', op: 'create-veth', args: { name: 'hxv0', peerName: 'evil1' }, why: PREFIX },
  { name: 'rename-own-outside-prefix', what: 'rename its own bridge out of its prefix', op: 'rename-link', args: { name: 'hxown0', newName: 'evil2' }, why: PREFIX },
  { name: 'create-ungranted-kind', what: 'create a dummy link (kind not granted)', op: 'create-dummy', args: { name: 'hxd0' }, why: NOT_GRANTED },
  { name: 'delete-other-driver', what: "delete another driver's bridge", op: 'delete-link', args: { name: 'wnother' }, why: NOT_OWNED },
  { name: 'down-other-driver', what: "set another driver's bridge down", op: 'set-link-up', args: { name: 'wnother', up: false }, why: NOT_OWNED },
  { name: 'rename-other-driver', what: "rename another driver's bridge", op: 'rename-link', args: { name: 'wnother', newName: 'hxstolen' }, why: NOT_OWNED },
  { name: 'enslave-to-other-driver', what: "enslave its own veth to another driver's bridge", op: 'set-link-master', args: { name: 'hxv0', master: 'wnother' }, why: NOT_OWNED },
  { name: 'addr-other-driver-pool', what: "put an address of another driver's pool on its own bridge", op: 'add-address', args: { linkName: 'hxown0', cidr: '10.77.0.9/24' }, why: POOLS },
  { name: 'delete-foreign', what: 'delete a link under its prefix that it did not create', op: 'delete-link', args: { name: 'hxforeign' }, why: NOT_OWNED },
  { name: 'up-foreign', what: 'set up a link under its prefix that it did not create', op: 'set-link-up', args: { name: 'hxforeign', up: true }, why: NOT_OWNED },
  { name: 'enslave-foreign', what: 'enslave a link under its prefix that it did not create to its own bridge', op: 'set-link-master', args: { name: 'hxforeign', master: 'hxown0' }, why: NOT_OWNED },
  { name: 'addr-outside-pools', what: 'add an IPv4 address outside its pools to its own bridge', op: 'add-address', args: { linkName: 'hxown0', cidr: '10.99.0.5/24' }, why: POOLS },
  { name: 'addr6-outside-pools', what: 'add an IPv6 address outside its pools to its own bridge', op: 'add-address', args: { linkName: 'hxown0', cidr: 'fd99::5/64' }, why: POOLS },
  { name: 'route-outside-pools', what: 'add a route outside its pools via its own bridge', op: 'add-route', args: { destination: '10.123.0.0/16', link: 'hxown0' }, why: POOLS },
  { name: 'route-wider-than-pool', what: 'add a route wider than its pool via its own bridge', op: 'add-route', args: { destination: '10.88.0.0/16', link: 'hxown0' }, why: POOLS },
  { name: 'route-gateway-outside-pools', what: 'add a route via a gateway outside its pools', op: 'add-route', args: { destination: '10.88.0.128/25', gateway: '192.0.2.1', link: 'hxown0' }, why: /route gateway 192\.0\.2\.1 is outside the pools/ },
  { name: 'default-route-own', what: 'add a default route via its own bridge', op: 'add-route', args: { destination: '0.0.0.0/0', link: 'hxown0' }, why: POOLS },
  { name: 'default-route6-own', what: 'add an IPv6 default route via its own bridge', op: 'add-route', args: { destination: '::/0', link: 'hxown0' }, why: POOLS },
  { name: 'neighbor-outside-pools', what: 'add a neighbour outside its pools on its own bridge', op: 'add-neighbor', args: { link: 'hxown0', ip: '192.0.2.1' }, why: POOLS },
  { name: 'addr-wider-prefix', what: 'add an address in its pool with a prefix wider than the pool (10.88.0.5/8)', op: 'add-address', args: { linkName: 'hxown0', cidr: '10.88.0.5/8' }, why: /pool/ },
  { name: 'addr6-zero-prefix', what: 'add an IPv6 address in its pool with prefix /0 (fd88::5/0)', op: 'add-address', args: { linkName: 'hxown0', cidr: 'fd88::5/0' }, why: /pool/ },
  { name: 'move-own-to-unjoined-netns', what: 'move its own bridge into a namespace never given to it', op: 'move-link-to-sandbox', args: { name: 'hxown0' }, why: SANDBOX },
  // Last: it spends the driver's whole burst.
  { name: 'rate-limit', what: 'exceed the rate limit (50 calls/s, bursts of 100)', op: 'list-links', args: {}, why: RATE, expect: 'rate-limited' },
];

/**
 * Escapes the policy does not stop today, reported for the broker to fix
 * (runtime/broker/policy.ts). Their tests expect the escape to succeed and
 * fail as soon as it is refused: then delete the entry here.
 */
const KNOWN_HOLES: Record<string, string> = {};

interface Report {
  attempt: string;
  outcome: string;
  detail: unknown;
}

interface AuditEntry {
  id: number;
  driver: string;
  op: string;
  args: Record<string, unknown>;
  allowed: boolean;
  error?: string;
}

function ipJson(ns: string, args: string[]): unknown {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }) || '[]');
}

/** Drops what changes by itself over time: the bridge timers of `ip -d link`. */
function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([k]) => !k.endsWith('_timer')).map(([k, x]) => [k, stable(x)]));
  }
  return v;
}

/** The namespace's link, address and route tables. */
function tables(ns: string) {
  return stable({
    links: ipJson(ns, ['-d', 'link', 'show']),
    addresses: ipJson(ns, ['addr', 'show']),
    routes4: ipJson(ns, ['-4', 'route', 'show', 'table', 'all']),
    routes6: ipJson(ns, ['-6', 'route', 'show', 'table', 'all']),
  });
}

/** GET on the admin API (a unix socket); anything but 200 fails. */
async function adminGet(socketPath: string, path: string): Promise<unknown> {
  const r = await requestJson(socketPath, 'GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** `wasmnet <args>` on the runtime under test, as a child process. */
function wasmnetCli(args: string[]): string {
  const [file, argv] = defaultRuntime() === 'node' ? [NODE_BIN, [NODE_ENTRY, ...args]] : [DENO_BIN, ['run', '-A', DENO_ENTRY, ...args]];
  return execFileSync(file, argv, { encoding: 'utf8', cwd: REPO_ROOT });
}

/** The driver's report, from the Err of the CreateNetwork ("create-network: {json}"). */
function reportOf(err: unknown): Report {
  assert.equal(typeof err, 'string', `CreateNetwork answered no Err: ${JSON.stringify(err)}`);
  const text = err as string;
  const start = text.indexOf('{');
  assert.ok(start >= 0, `Err carries no report: ${text}`);
  return JSON.parse(text.slice(start)) as Report;
}

const isSubset = (sub: Record<string, unknown>, obj: Record<string, unknown>) => Object.entries(sub).every(([k, v]) => JSON.stringify(obj[k]) === JSON.stringify(v));

const nid = (i: number) => i.toString(16).padStart(64, '0');

if (reason) {
  console.log(`hostile driver tests: ${reason}: skipped`);
  test('hostile driver against the netlink policy', { skip: reason }, () => {});
} else {
  describe('a hostile driver cannot get around the netlink policy', () => {
    const tag = randomBytes(3).toString('hex');
    const ns = `wnhx-${tag}`;
    const otherNs = `wnhxo-${tag}`;
    const otherNsPath = `/run/netns/${otherNs}`;
    const dir = mkdtempSync(join(tmpdir(), 'wasmnet-hostile-'));
    const stateDir = join(dir, 'state');
    const socketDir = join(dir, 'plugins');
    const adminSock = join(stateDir, 'admin.sock');
    const bridgeHost = new WasmnetHost({ socketDir, stateDir, name: 'wasmnet-other', netns: ns, extraArgs: ['--driver', bridgeComponent] });
    const host = new WasmnetHost({ socketDir, stateDir, name: 'wasmnet-hostile-it', netns: ns, extraArgs: ['--driver', hostileComponent] });
    const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { stdio: 'pipe' });
    let n = 0;

    before(async () => {
      // The hostile driver is built from its sources here (a no-op when up to date); the bridge driver only if missing.
      execFileSync(NODE_BIN, [join(REPO_ROOT, 'drivers-wasm/build.ts'), 'hostile', ...(existsSync(bridgeComponent) ? [] : ['bridge'])], { cwd: REPO_ROOT, stdio: 'pipe' });
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['netns', 'add', otherNs]);
      // No duplicate address detection, so that IPv6 addresses do not change state while the tables are compared.
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      ip('link', 'set', 'lo', 'up');
      // A host link with an address and the default route (dummy links are not available on every kernel: a veth pair).
      ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
      ip('addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
      ip('link', 'set', 'eth0', 'up');
      ip('link', 'set', 'eth0p', 'up');
      ip('route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'eth0');
      // A link under the hostile driver's prefix that it did not create.
      ip('link', 'add', 'hxforeign', 'type', 'bridge');
      // Another driver's link: the bundled bridge driver makes (and owns, in the shared state) the bridge "wnother".
      await bridgeHost.start();
      await callOk(bridgeHost.socketPath, 'CreateNetwork', {
        NetworkID: 'f'.repeat(64),
        Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': 'wnother' } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24' }],
        IPv6Data: [],
      });
      await bridgeHost.stop();
      await host.start();
    });

    after(async () => {
      await bridgeHost.dispose();
      await host.dispose();
      for (const n of [ns, otherNs]) {
        try {
          execFileSync('ip', ['netns', 'del', n]);
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    });

    test('set-up: the host serves the hostile driver; wnother belongs to wasmnet-bridge', async () => {
      assert.deepEqual((await callPlugin(host.socketPath, '/NetworkDriver.GetCapabilities')).json, { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false });
      const names = (ipJson(ns, ['link', 'show']) as { ifname: string }[]).map((l) => l.ifname).sort();
      assert.deepEqual(names, ['eth0', 'eth0p', 'hxforeign', 'lo', 'wnother']);
      const made = (await adminGet(adminSock, '/v1/audit?driver=wasmnet-bridge&op=create-bridge')) as AuditEntry[];
      assert.ok(made.some((e) => e.allowed && e.args.name === 'wnother'), JSON.stringify(made));
    });

    /** One CreateNetwork naming an attempt: the driver's report and the calls it made, as audited. */
    async function escape(attempt: string): Promise<{ report: Report; calls: AuditEntry[] }> {
      const lastId = ((await adminGet(adminSock, `/v1/audit?driver=${DRIVER}&limit=1`)) as AuditEntry[])[0]?.id ?? 0;
      const r = await callPlugin(host.socketPath, '/NetworkDriver.CreateNetwork', {
        NetworkID: nid(++n),
        Options: { 'com.docker.network.generic': { 'hostile.attempt': attempt, 'hostile.netns': otherNsPath } },
        IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.88.0.0/24', Gateway: '10.88.0.1/24' }],
        IPv6Data: [{ AddressSpace: 'LocalDefault', Pool: 'fd88::/64', Gateway: 'fd88::1/64' }],
      });
      assert.equal(r.status, 200);
      const report = reportOf(r.json.Err);
      assert.equal(report.attempt, attempt);
      const calls = ((await adminGet(adminSock, `/v1/audit?driver=${DRIVER}&limit=10000`)) as AuditEntry[]).filter((e) => e.id > lastId);
      return { report, calls };
    }

    /** The driver was refused exactly once, for that call and that reason, and told so. */
    function assertRefused(a: Pick<Attempt, 'op' | 'args' | 'why' | 'expect'>, report: Report, calls: AuditEntry[]): AuditEntry {
      assert.equal(report.outcome, a.expect ?? 'denied', `the host answered the driver: ${JSON.stringify(report)}`);
      const refused = calls.filter((e) => !e.allowed);
      assert.equal(refused.length, 1, `one refused call audited: ${JSON.stringify(refused)}`);
      const entry = refused[0]!;
      assert.equal(entry.driver, DRIVER);
      assert.equal(entry.op, a.op, JSON.stringify(entry));
      assert.ok(isSubset(a.args, entry.args), `audited arguments ${JSON.stringify(entry.args)} include ${JSON.stringify(a.args)}`);
      assert.match(entry.error ?? '', a.why);
      return entry;
    }

    /** A known hole (KNOWN_HOLES): the host let the driver do it, and audited it as allowed. */
    function assertHoleStillOpen(name: string, a: Pick<Attempt, 'op' | 'args'>, report: Report, calls: AuditEntry[]): void {
      assert.equal(report.outcome, 'allowed', `the escape is refused now (${JSON.stringify(report)}): remove "${name}" from KNOWN_HOLES`);
      console.log(`KNOWN POLICY HOLE ${name}: ${KNOWN_HOLES[name]}; the driver got: ${JSON.stringify(report.detail)}`);
      assert.ok(calls.some((e) => e.allowed && e.op === a.op && isSubset(a.args, e.args)), JSON.stringify(calls));
    }

    const title = (name: string, what: string) => (KNOWN_HOLES[name] ? `KNOWN POLICY HOLE, the escape still succeeds: ${name}: ${what}` : `${name}: ${what}`);

    {
      const name = 'delete-replaced-bridge';
      test(title(name, 'delete a link that took the name of one it made (ownership is by link, not by name)'), async () => {
        const before = tables(ns);
        try {
          const kept = await escape('keep-own-bridge');
          assert.equal(kept.report.outcome, 'allowed', JSON.stringify(kept.report));
          // Its bridge goes away behind the host's back, and someone else makes a link of that name.
          ip('link', 'del', 'hxstale');
          ip('link', 'add', 'hxstale', 'type', 'bridge');
          const replaced = tables(ns);
          const { report, calls } = await escape(name);
          const a = { op: 'delete-link', args: { name: 'hxstale' }, why: /not the link this driver created/ };
          if (KNOWN_HOLES[name]) {
            assertHoleStillOpen(name, a, report, calls);
            assert.equal((ipJson(ns, ['link', 'show']) as { ifname: string }[]).some((l) => l.ifname === 'hxstale'), false, 'the link the test made is gone');
          } else {
            assertRefused(a, report, calls);
            assert.deepEqual(tables(ns), replaced, "the namespace's links, addresses and routes are unchanged");
          }
        } finally {
          try {
            ip('link', 'del', 'hxstale');
          } catch {
            // gone
          }
        }
        assert.deepEqual(tables(ns), before);
      });
    }

    for (const a of attempts) {
      test(title(a.name, a.what), async () => {
        // A full bucket (its burst refills in 2 s), so that the count below does not depend on the attempts before.
        if (a.expect === 'rate-limited') await new Promise((r) => setTimeout(r, 2_100));
        const before = tables(ns);
        const { report, calls } = await escape(a.name);
        if (KNOWN_HOLES[a.name]) {
          assertHoleStillOpen(a.name, a, report, calls);
        } else {
          const entry = assertRefused(a, report, calls);
          if (a.expect === 'rate-limited') {
            const succeeded = (report.detail as { succeeded: number }).succeeded;
            // The burst (twice the rate), plus what refills while the calls run.
            assert.ok(succeeded >= 100 && succeeded <= 150, `limited after ${succeeded} calls (${entry.error})`);
          }
        }
        assert.deepEqual(tables(ns), before, "the namespace's links, addresses and routes are unchanged");
      });
    }

    test('`wasmnet audit --json --denied` lists every refusal, and nothing reached the other namespace', () => {
      const out = wasmnetCli(['audit', '--json', '--state-dir', stateDir, '--driver', DRIVER, '--denied', '--limit', '10000']);
      const denied = JSON.parse(out) as AuditEntry[];
      const refused = [...attempts, { name: 'delete-replaced-bridge', op: 'delete-link' }].filter((a) => !KNOWN_HOLES[a.name]);
      assert.equal(denied.length, refused.length, JSON.stringify(denied.map((e) => e.op)));
      assert.ok(denied.every((e) => e.driver === DRIVER && e.allowed === false && e.error));
      assert.deepEqual(new Set(denied.map((e) => e.op)), new Set(refused.map((a) => a.op)));
      assert.deepEqual((ipJson(otherNs, ['link', 'show']) as { ifname: string }[]).map((l) => l.ifname), ['lo']);
    });
  });
}
