// Runs one privileged call: rate limit, policy check, the operation itself,
// and an audit record of the outcome (allowed or denied, errno, duration),
// whatever happens. Failures become the WIT error variant the driver sees.
// Records are written in one transaction after each driver call (the host
// flushes there), so a crash of the host in the middle of a driver call can
// lose that call's records.
import type { Logger } from 'pino';
import { witError } from '../contract.ts';
import { NetlinkError } from '../netlink/backend.ts';
import type { AuditLog } from '../store/store.ts';
import { PolicyDenied, RateLimited } from './policy.ts';

export interface CallerIdentity {
  driver: string;
  version: string;
}

export function auditedCall(audit: AuditLog, who: CallerIdentity, logger: Logger) {
  return function call<T>(op: string, args: Record<string, unknown>, check: () => void, run: () => T): T {
    const started = performance.now();
    const time = new Date().toISOString();
    const record = (allowed: boolean, extra: { errno?: number; error?: string } = {}) => {
      try {
        audit.record({ time, driver: who.driver, version: who.version, op, args, allowed, durationMs: +(performance.now() - started).toFixed(3), ...extra });
      } catch (e) {
        logger.error({ op, err: (e as Error).message }, 'audit log unavailable');
        throw witError({ tag: 'denied', val: 'the audit log is unavailable' });
      }
    };
    try {
      check();
    } catch (e) {
      const denied = e instanceof RateLimited ? 'rate-limited' : e instanceof PolicyDenied ? 'denied' : 'invalid';
      const message = e instanceof Error ? e.message : String(e);
      record(false, { error: message });
      logger.warn({ op, args, denied: message }, 'netlink call denied');
      throw witError({ tag: denied, val: `${op}: ${message}` });
    }
    const failed = (e: unknown): never => {
      if (e instanceof NetlinkError) {
        record(true, { errno: e.errno, error: e.message });
        throw witError({ tag: 'kernel', val: { code: e.errno, name: e.code, message: `${op}: ${e.message}` } });
      }
      const message = e instanceof Error ? e.message : String(e);
      record(true, { error: message });
      throw witError({ tag: 'invalid', val: `${op}: ${message}` });
    };
    let result: T;
    try {
      result = run();
    } catch (e) {
      return failed(e);
    }
    // Operations on the netlink workers answer later; the record waits for the outcome.
    if (result instanceof Promise) {
      return result.then(
        (r) => {
          record(true);
          return r;
        },
        failed,
      ) as T;
    }
    record(true);
    return result;
  };
}
