// The admin API, served on `<state-dir>/admin.sock` (root only): grants and
// the audit log, the same data `wasmnet grants` and `wasmnet audit` show.
import { Hono } from 'hono';
import * as v from 'valibot';
import type { HostState } from '../../runtime/store/store.ts';

export const AuditQuery = v.strictObject({
  driver: v.optional(v.pipe(v.string(), v.maxLength(64))),
  op: v.optional(v.pipe(v.string(), v.regex(/^[a-z-]{1,40}$/, 'must be an operation name such as add-address'))),
  allowed: v.optional(v.picklist(['true', 'false'])),
  since: v.optional(v.pipe(v.string(), v.isoTimestamp('must be an ISO time such as 2026-11-28T05:00:00Z'))),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'must be a whole number'), v.transform(Number), v.minValue(1), v.maxValue(100_000))),
});

export function createAdminApp(state: HostState): Hono {
  const app = new Hono();
  app.get('/v1/grants', (c) => c.json(state.grants.list(c.req.query('driver')).map((g) => ({ ...g, manifest: JSON.parse(g.manifest) }))));
  app.delete('/v1/grants/:digest', (c) => {
    const digest = c.req.param('digest');
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return c.json({ error: 'digest must be sha256:<64 hex digits>' }, 400);
    return state.grants.revoke(digest) ? c.json({ revoked: digest }) : c.json({ error: `no grant for ${digest}` }, 404);
  });
  app.get('/v1/audit', (c) => {
    const q = v.safeParse(AuditQuery, c.req.query());
    if (!q.success) return c.json({ error: q.issues.map((i) => `${v.getDotPath(i) ?? 'query'}: ${i.message}`).join('; ') }, 400);
    const { allowed, ...rest } = q.output;
    return c.json(state.audit.query({ ...rest, allowed: allowed === undefined ? undefined : allowed === 'true' }));
  });
  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  return app;
}
