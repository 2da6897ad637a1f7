// Unit tests of the protocol mapping and validation: the Hono app in front of
// a driver whose exports are plain functions (a mock: the real component is
// exercised by the integration and end-to-end tests).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createPluginApp, singleRoute } from './plugin-app.ts';
import { DriverHost } from '../../runtime/driver-host.ts';
import { InProcessInvoker } from '../../runtime/invoker.ts';
import { CONTRACT_VERSION, DriverCallError, type DriverExports } from '../../runtime/contract.ts';
import type { InterfaceInfo, JoinInfo } from '../../runtime/callbacks.ts';

const nid = 'a'.repeat(64);
const eid = 'b'.repeat(64);

type Calls = { method: string; args: unknown[] }[];

function fakeDriver(calls: Calls, overrides: Partial<DriverExports['driver']> = {}): DriverExports {
  const rec =
    (method: string, ret?: unknown) =>
    (...args: unknown[]) => {
      calls.push({ method, args });
      return ret as never;
    };
  return {
    registration: { describe: () => ({ name: 'fake', capability: { dataScope: 'local', connectivityScope: 'local' } }) },
    driver: {
      networkAllocate: rec('networkAllocate', [['k', 'v']]),
      networkFree: rec('networkFree'),
      createNetwork: rec('createNetwork'),
      deleteNetwork: rec('deleteNetwork'),
      createEndpoint: rec('createEndpoint'),
      deleteEndpoint: rec('deleteEndpoint'),
      endpointOperInfo: rec('endpointOperInfo', [{ key: 'com.docker.network.endpoint.macaddress', value: '"02:42:0a:00:00:02"' }]),
      join: rec('join'),
      leave: rec('leave'),
      type: () => 'fake',
      isBuiltIn: () => false,
      ...overrides,
    },
  };
}

async function appWith(exports: DriverExports, extraExports: string[] = [], callTimeoutMs = 1000) {
  const prepared = {
    digest: 'sha256:0',
    imports: [],
    exports: [`wasmnet:driver/driver@${CONTRACT_VERSION}`, `wasmnet:driver/registration@${CONTRACT_VERSION}`, ...extraExports],
  };
  const host = await DriverHost.start(prepared, new InProcessInvoker({ exports }), { callTimeoutMs });
  return createPluginApp({ route: singleRoute(host), logger: pino({ level: 'silent' }), maxBodyBytes: 4096 });
}

/** Posts the way dockerd does: no Content-Type, a JSON body with a trailing newline. */
async function post(app: Awaited<ReturnType<typeof appWith>>, path: string, body?: unknown) {
  const res = await app.request(path, { method: 'POST', body: body === undefined ? '' : JSON.stringify(body) + '\n', headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('plugin protocol', () => {
  test('Activate and GetCapabilities answer with empty bodies', async () => {
    const app = await appWith(fakeDriver([]));
    assert.deepEqual(await post(app, '/Plugin.Activate'), { status: 200, json: { Implements: ['NetworkDriver'] } });
    assert.deepEqual(await post(app, '/NetworkDriver.GetCapabilities'), { status: 200, json: { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: false } });
  });

  test('CreateNetwork maps options losslessly (nested JSON) and IPAM data', async () => {
    const calls: Calls = [];
    const app = await appWith(fakeDriver(calls));
    const options = {
      'com.docker.network.generic': { 'com.docker.network.bridge.name': 'br0', nested: { a: [1, 2, { b: null }] } },
      'com.docker.network.enable_ipv6': false,
      'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }],
    };
    const res = await post(app, '/NetworkDriver.CreateNetwork', {
      NetworkID: nid,
      Options: options,
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.1.0.0/24', Gateway: '10.1.0.1/24', AuxAddresses: { host: '10.1.0.5/24' } }],
      IPv6Data: [],
    });
    assert.deepEqual(res, { status: 200, json: {} });
    const [ctx, gotNid, gotOptions, , v4, v6] = calls[0]!.args as [{ deadlineMs: bigint }, string, { key: string; value: string }[], unknown, unknown, unknown];
    assert.equal(gotNid, nid);
    assert.ok(ctx.deadlineMs > BigInt(Date.now()));
    assert.deepEqual(Object.fromEntries(gotOptions.map((o) => [o.key, JSON.parse(o.value)])), options);
    assert.deepEqual(v4, [{ addressSpace: 'LocalDefault', pool: '10.1.0.0/24', gateway: '10.1.0.1/24', auxAddresses: [['host', '10.1.0.5/24']] }]);
    assert.deepEqual(v6, []);
  });

  test('CreateEndpoint returns only what the driver set, and refuses overwriting', async () => {
    const calls: Calls = [];
    const app = await appWith(
      fakeDriver(calls, {
        createEndpoint: (_ctx, _n, _e, info) => {
          const i = info as unknown as InterfaceInfo;
          i.setMacAddress('02:42:0A:01:00:02');
          assert.throws(() => i.setIpAddress('10.1.0.9/24'), (e: DriverCallError) => e.kind === 'forbidden');
        },
      }),
    );
    const res = await post(app, '/NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: '10.1.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
    assert.deepEqual(res, { status: 200, json: { Interface: { Address: '', AddressIPv6: '', MacAddress: '02:42:0a:01:00:02' } } });
  });

  test('CreateEndpoint with nothing set answers without Interface', async () => {
    const app = await appWith(fakeDriver([]));
    const res = await post(app, '/NetworkDriver.CreateEndpoint', { NetworkID: nid, EndpointID: eid, Interface: { Address: '10.1.0.2/24', AddressIPv6: '', MacAddress: '02:42:0a:01:00:02' }, Options: {} });
    assert.deepEqual(res, { status: 200, json: {} });
  });

  test('Join builds the response from the JoinInfo setters', async () => {
    const app = await appWith(
      fakeDriver([], {
        join: (_ctx, _n, _e, _key, info) => {
          const j = info as unknown as JoinInfo;
          j.interfaceName().setNames('wnc123', 'eth', '');
          j.setGateway('10.1.0.1');
          j.addStaticRoute('224.0.0.0/4', 'connected', '');
          j.addStaticRoute('10.9.0.0/16', 'next-hop', '10.1.0.254');
          assert.throws(() => j.setGateway('fd00::1'));
          assert.throws(() => j.interfaceName().setNames('a/b', 'eth', ''));
        },
      }),
    );
    const res = await post(app, '/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/abc', Options: {} });
    assert.deepEqual(res, {
      status: 200,
      json: {
        InterfaceName: { SrcName: 'wnc123', DstPrefix: 'eth', DstName: '' },
        Gateway: '10.1.0.1',
        StaticRoutes: [
          { Destination: '224.0.0.0/4', RouteType: 1, NextHop: '' },
          { Destination: '10.9.0.0/16', RouteType: 0, NextHop: '10.1.0.254' },
        ],
      },
    });
  });

  test('EndpointOperInfo decodes the JSON values', async () => {
    const app = await appWith(fakeDriver([]));
    assert.deepEqual(await post(app, '/NetworkDriver.EndpointOperInfo', { NetworkID: nid, EndpointID: eid }), {
      status: 200,
      json: { Value: { 'com.docker.network.endpoint.macaddress': '02:42:0a:00:00:02' } },
    });
  });

  test('a driver error becomes {"Err"}; not-found on deletes becomes {}', async () => {
    const notFound = () => {
      throw { kind: 'not-found', message: 'no such network' };
    };
    const app = await appWith(
      fakeDriver([], {
        createNetwork: () => {
          throw { kind: 'invalid-parameter', message: 'bad mtu' };
        },
        deleteNetwork: notFound,
        leave: notFound,
        deleteEndpoint: notFound,
      }),
    );
    assert.deepEqual(await post(app, '/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: {}, IPv4Data: [], IPv6Data: [] }), { status: 200, json: { Err: 'create-network: bad mtu' } });
    assert.deepEqual(await post(app, '/NetworkDriver.DeleteNetwork', { NetworkID: nid }), { status: 200, json: {} });
    assert.deepEqual(await post(app, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid }), { status: 200, json: {} });
    assert.deepEqual(await post(app, '/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid }), { status: 200, json: {} });
  });

  test('a trap in the driver is an error answer, not a crash', async () => {
    const app = await appWith(
      fakeDriver([], {
        leave: () => {
          throw new WebAssembly.RuntimeError('unreachable');
        },
      }),
    );
    const res = await post(app, '/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid });
    assert.equal(res.status, 200);
    assert.match(String(res.json.Err), /leave: driver failed: unreachable/);
  });

  test('malformed requests are refused with every problem named, and the driver is not called', async () => {
    const calls: Calls = [];
    const app = await appWith(fakeDriver(calls));
    const bad = [
      ['/NetworkDriver.CreateNetwork', '{"NetworkID": 1'],
      ['/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'x/y', Options: {}, IPv4Data: [] })],
      ['/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: nid, IPv4Data: [{ Pool: '10.0.0.0/33' }] })],
      ['/NetworkDriver.CreateEndpoint', JSON.stringify({ NetworkID: nid, EndpointID: eid, Interface: { MacAddress: 'zz' } })],
      ['/NetworkDriver.Join', JSON.stringify({ NetworkID: nid })],
      ['/NetworkDriver.Leave', '[]'],
    ] as const;
    for (const [path, body] of bad) {
      const res = await app.request(path, { method: 'POST', body });
      assert.equal(res.status, 400, `${path} ${body}`);
      assert.match(((await res.json()) as { Err: string }).Err, /invalid|not JSON/);
    }
    assert.deepEqual(calls, []);
  });

  test('unknown methods are 404; GwAllocCheck is 404 unless the driver exports gw-alloc-checker', async () => {
    const app = await appWith(fakeDriver([]));
    assert.equal((await post(app, '/NetworkDriver.Nope', {})).status, 404);
    assert.equal((await post(app, '/Other.Thing', {})).status, 404);
    assert.equal((await post(app, '/NetworkDriver.GwAllocCheck', { Options: {} })).status, 404);
    const exports = fakeDriver([]);
    exports.gwAllocChecker = { getSkipGwAlloc: () => ({ skipIpv4: true, skipIpv6: false }) };
    const withChecker = await appWith(exports, [`wasmnet:driver/gw-alloc-checker@${CONTRACT_VERSION}`]);
    assert.deepEqual((await post(withChecker, '/NetworkDriver.GetCapabilities')).json.GwAllocChecker, true);
    assert.deepEqual(await post(withChecker, '/NetworkDriver.GwAllocCheck', { Options: {} }), { status: 200, json: { SkipIPv4: true, SkipIPv6: false } });
  });

  test('Program/Revoke external connectivity succeed without ext-conner; Discover and swarm calls answer', async () => {
    const calls: Calls = [];
    const app = await appWith(fakeDriver(calls));
    assert.deepEqual(await post(app, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: nid, EndpointID: eid, Options: {} }), { status: 200, json: {} });
    assert.deepEqual(await post(app, '/NetworkDriver.RevokeExternalConnectivity', { NetworkID: nid, EndpointID: eid }), { status: 200, json: {} });
    assert.deepEqual(await post(app, '/NetworkDriver.DiscoverNew', { DiscoveryType: 1, DiscoveryData: { Address: '10.0.0.1', BindAddress: '', Self: true } }), { status: 200, json: {} });
    assert.deepEqual(await post(app, '/NetworkDriver.AllocateNetwork', { NetworkID: nid, Options: { a: 'b' }, IPv4Data: [], IPv6Data: [] }), { status: 200, json: { Options: { k: 'v' } } });
    assert.deepEqual(await post(app, '/NetworkDriver.FreeNetwork', { NetworkID: nid }), { status: 200, json: {} });
    assert.deepEqual(calls.map((c) => c.method), ['networkAllocate', 'networkFree']);
  });

  test('bodies over the limit get 413 and reach no driver', async () => {
    const calls: Calls = [];
    const app = await appWith(fakeDriver(calls));
    const res = await post(app, '/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: { big: 'x'.repeat(8192) }, IPv4Data: [], IPv6Data: [] });
    assert.equal(res.status, 413);
    assert.deepEqual(calls, []);
  });

  test('a call past its deadline is answered with a timeout error', async () => {
    const app = await appWith(
      fakeDriver([], {
        createNetwork: () => {
          const until = Date.now() + 80;
          while (Date.now() < until);
        },
      }),
      [],
      20,
    );
    const res = await post(app, '/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: {}, IPv4Data: [], IPv6Data: [] });
    assert.match(String(res.json.Err), /create-network: driver fake took longer than 20 ms/);
  });
});
