// What the end-to-end tests check of a container on the driver's network:
// the settings dockerd reports, the address and default route `ip` shows
// inside it, that it reaches another container, and, when a check fails, the
// host's and dockerd's last lines beside the failure.
import assert from 'node:assert/strict';
import type { Dockerd } from './dockerd.ts';
import type { WasmnetHost } from '../../lib/wasmnet-host.ts';

/** A container's settings on one network, as `docker inspect` reports them. */
export interface NetSettings {
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
}

export interface ContainerChecksOptions {
  /** The network's name. */
  network: string;
  /** Its IPv4 subnet, e.g. 10.201.0.0/24, and gateway. */
  subnet: string;
  gateway: string;
  /** The test's dockerd and wasmnet host, once started. */
  dockerd: () => Dockerd | undefined;
  host: () => WasmnetHost | undefined;
}

export function containerChecks(o: ContainerChecksOptions) {
  const docker = (): Dockerd => {
    const d = o.dockerd();
    assert.ok(d, 'dockerd is running');
    return d;
  };
  // The addresses of a /24 share its first three bytes.
  const prefix = o.subnet.split('.').slice(0, 3).join('.') + '.';

  async function settingsOf(name: string): Promise<NetSettings> {
    const nets = JSON.parse(await docker().docker('inspect', '-f', '{{json .NetworkSettings.Networks}}', name)) as Record<string, NetSettings>;
    const s = nets[o.network];
    assert.ok(s && s.IPAddress, `${name} has an address on ${o.network}: ${JSON.stringify(nets)}`);
    return s;
  }

  /** eth0 holds the address dockerd gave, in the subnet, and the default route goes through the gateway. */
  async function assertAddressAndRoute(name: string): Promise<NetSettings> {
    const s = await settingsOf(name);
    assert.ok(s.IPAddress.startsWith(prefix), `${s.IPAddress} in ${o.subnet}`);
    assert.equal(s.Gateway, o.gateway);
    const addr = await docker().docker('exec', name, 'ip', '-4', 'addr', 'show', 'eth0');
    assert.ok(addr.includes(`inet ${s.IPAddress}/${s.IPPrefixLen}`), `eth0 of ${name} has ${s.IPAddress}/${s.IPPrefixLen}:\n${addr}`);
    const routes = await docker().docker('exec', name, 'ip', '-4', 'route');
    assert.match(routes, new RegExp(`^default via ${o.gateway.replaceAll('.', '\\.')} dev eth0`, 'm'), `routes of ${name}:\n${routes}`);
    return s;
  }

  async function assertPing(from: string, to: string): Promise<void> {
    const ip = (await settingsOf(to)).IPAddress;
    const r = await docker().dockerResult(['exec', from, 'ping', '-c', '1', '-W', '2', ip], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, `${from} pings ${to} (${ip}):\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /1 packets received/);
  }

  /** The last lines of the host's and dockerd's output. */
  function diagnostics(): string {
    const host = o.host();
    const d = o.dockerd();
    return [
      host ? `--- wasmnet host output (${host.logFile}):\n${host.logTail(60)}` : '',
      d ? `--- dockerd log (${d.logFile}):\n${d.logTail(30)}` : '',
    ].join('\n');
  }

  /** Runs `f`; a failure's message gets the diagnostics. */
  async function withDiagnostics<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof Error) err.message += `\n${diagnostics()}`;
      throw err;
    }
  }

  return { settingsOf, assertAddressAndRoute, assertPing, diagnostics, withDiagnostics };
}
