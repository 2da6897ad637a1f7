// Talks to a running host's admin API over `<state-dir>/admin.sock`.
import http from 'node:http';
import { existsSync } from 'node:fs';

export async function adminRequest(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  if (!existsSync(socketPath)) throw new Error(`no wasmnet host is running with this state directory (no ${socketPath})`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path, method, headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}, timeout: 120_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            reject(new Error(`the host answered ${res.statusCode} with ${JSON.stringify(text.slice(0, 200))}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('the host did not answer')));
    req.on('error', reject);
    req.end(payload);
  });
}
