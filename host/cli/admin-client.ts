// Talks to a running host's admin API over `<state-dir>/admin.sock`, with a
// JSON request over a unix socket (requestOverUnixSocket, which the tests
// also use to talk to the plugin socket the way dockerd does).
import http from 'node:http';
import { existsSync } from 'node:fs';

export interface UnixRequest {
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  /** The body, sent as it is (with its Content-Length). */
  payload?: string;
  timeoutMs?: number;
  /** How the failures name the request (default: the path). */
  what?: string;
}

/** One HTTP request over a unix socket; the reply must be JSON. */
export function requestOverUnixSocket(socketPath: string, r: UnixRequest): Promise<{ status: number; json: unknown }> {
  const payload = r.payload ?? '';
  const what = r.what ?? r.path;
  const timeoutMs = r.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: r.path, method: r.method, headers: { ...r.headers, 'Content-Length': Buffer.byteLength(payload) }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        } catch {
          reject(new Error(`${what}: ${res.statusCode} with a reply that is not JSON: ${JSON.stringify(text.slice(0, 200))}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${what}: no reply within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export async function adminRequest(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  if (!existsSync(socketPath)) throw new Error(`no wasmnet host is running with this state directory (no ${socketPath})`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return requestOverUnixSocket(socketPath, { method, path, payload, headers: payload ? { 'Content-Type': 'application/json' } : {}, what: `the host's admin API (${method} ${path})` });
}
