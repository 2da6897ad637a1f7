// Talks to a plugin socket the way dockerd does: POST, no Content-Type, a JSON
// body ending in a newline (or an empty body), over a unix socket; and to the
// admin API as the CLI does.
import { adminRequest, requestOverUnixSocket } from '../../host/cli/admin-client.ts';

export interface PluginReply {
  status: number;
  json: Record<string, unknown>;
}

export async function callPlugin(socketPath: string, path: string, body?: unknown, opts: { timeoutMs?: number; host?: string } = {}): Promise<PluginReply> {
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  const headers = { Accept: 'application/vnd.docker.plugins.v1.2+json', ...(opts.host ? { Host: opts.host } : {}) };
  const r = await requestOverUnixSocket(socketPath, { method: 'POST', path, payload, headers, timeoutMs: opts.timeoutMs ?? 30_000 });
  return { status: r.status, json: r.json as Record<string, unknown> };
}

/** Calls a NetworkDriver method and fails unless the reply is 200 without Err. */
export async function callOk(socketPath: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await callPlugin(socketPath, `/NetworkDriver.${method}`, body);
  if (r.status !== 200 || 'Err' in r.json) throw new Error(`${method}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** A request to the admin API. */
export const requestJson = adminRequest;
