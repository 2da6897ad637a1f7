// Talks to a plugin socket the way dockerd does: POST, no Content-Type, a JSON
// body ending in a newline (or an empty body), over a unix socket.
import http from 'node:http';

export interface PluginReply {
  status: number;
  json: Record<string, unknown>;
}

export function callPlugin(socketPath: string, path: string, body?: unknown, opts: { timeoutMs?: number; host?: string } = {}): Promise<PluginReply> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path, method: 'POST', headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(payload), ...(opts.host ? { Host: opts.host } : {}) }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new Error(`${path}: reply is not JSON: ${JSON.stringify(text.slice(0, 200))}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path}: no reply within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Calls a NetworkDriver method and fails unless the reply is 200 without Err. */
export async function callOk(socketPath: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await callPlugin(socketPath, `/NetworkDriver.${method}`, body);
  if (r.status !== 200 || 'Err' in r.json) throw new Error(`${method}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** A plain HTTP request on a unix socket (the admin API). */
export function requestJson(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const payload = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method, timeout: 120_000, headers: { 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        } catch {
          reject(new Error(`${path}: reply is not JSON: ${JSON.stringify(text.slice(0, 200))}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no reply`)));
    req.on('error', reject);
    req.end(payload);
  });
}
