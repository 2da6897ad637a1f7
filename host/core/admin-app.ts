// The admin API, served on `<state-dir>/admin.sock` (root only): the drivers
// and their versions (upgrade, rollback), grants and the audit log, the same
// things `wasmnet drivers|upgrade|rollback|grants|audit` show and do.
import { Hono } from 'hono';
import * as v from 'valibot';
import type { HostState } from '../../runtime/store/store.ts';
import type { DriverRouter } from '../../runtime/registry/router.ts';
import { readPackage, requireGrant } from '../../runtime/grants.ts';
import { installVersion } from '../../runtime/registry/versions.ts';
import { sandboxes, type SandboxStats } from '../../runtime/sandbox/process-sandbox.ts';

export const AuditQuery = v.strictObject({
  driver: v.optional(v.pipe(v.string(), v.maxLength(64))),
  op: v.optional(v.pipe(v.string(), v.regex(/^[a-z-]{1,40}$/, 'must be an operation name such as add-address'))),
  allowed: v.optional(v.picklist(['true', 'false'])),
  since: v.optional(v.pipe(v.string(), v.isoTimestamp('must be an ISO time such as 2026-11-28T05:00:00Z'))),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'must be a whole number'), v.transform(Number), v.minValue(1), v.maxValue(100_000))),
});

export const UpgradeRequest = v.strictObject({
  /** A component file, or an installed version (a version number or a digest). */
  target: v.pipe(v.string(), v.minLength(1), v.maxLength(4096)),
  manifest: v.optional(v.pipe(v.string(), v.maxLength(4096))),
  strategy: v.optional(v.picklist(['all', 'new-networks']), 'all'),
});

export interface AdminContext {
  stateDir: string;
  /** The version router of each served driver, by driver name. */
  routers: Map<string, DriverRouter>;
}

/** The sandbox processes a loaded version runs in (one per instance), with their counters; none when it runs in the host or is not loaded. */
function sandboxesOf(driver: string, digest: string): { pid: number | null; stats: SandboxStats }[] {
  return sandboxes()
    .filter((x) => x.driver === driver && x.digest === digest)
    .map((x) => ({ pid: x.pid ?? null, stats: { ...x.stats } }));
}

export function createAdminApp(state: HostState, ctx: AdminContext): Hono {
  const app = new Hono();
  const router = (name: string) => ctx.routers.get(name);

  app.get('/v1/drivers', (c) =>
    c.json([...ctx.routers.entries()].map(([name, r]) => ({ driver: name, versions: r.status().map((v) => ({ ...v, sandboxes: sandboxesOf(name, v.digest) })) }))),
  );

  app.post('/v1/drivers/:name/upgrade', async (c) => {
    const r = router(c.req.param('name'));
    if (!r) return c.json({ error: `no driver ${c.req.param('name')} is served here` }, 404);
    const body = v.safeParse(UpgradeRequest, await c.req.json().catch(() => undefined));
    if (!body.success) return c.json({ error: body.issues.map((i) => `${v.getDotPath(i) ?? 'body'}: ${i.message}`).join('; ') }, 400);
    const { target, manifest, strategy } = body.output;
    try {
      const installed = state.versions.list(c.req.param('name')).find((x) => x.version === target || x.digest === target);
      let version = installed;
      if (!version) {
        const pkg = await readPackage(target, manifest);
        if (pkg.manifest.name !== c.req.param('name')) throw new Error(`${target} is driver ${pkg.manifest.name}, not ${c.req.param('name')}`);
        requireGrant(state.grants, pkg);
        version = await installVersion(ctx.stateDir, state.versions, pkg);
      }
      return c.json(await r.switchTo(version, strategy));
    } catch (e) {
      return c.json({ error: (e as Error).message }, 409);
    }
  });

  app.post('/v1/drivers/:name/rollback', async (c) => {
    const r = router(c.req.param('name'));
    if (!r) return c.json({ error: `no driver ${c.req.param('name')} is served here` }, 404);
    try {
      return c.json(await r.rollback());
    } catch (e) {
      return c.json({ error: (e as Error).message }, 409);
    }
  });

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
