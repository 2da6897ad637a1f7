// The embedded store on SQLite through `node:sqlite` (built into Node 22.5+
// and Deno 2): the drivers' key-value state, grants, the link ledger, the
// scopes dockerd gave each driver, and the audit log. WAL mode, so a crash
// loses at most the call in flight, and readers (`wasmnet audit`) never block
// the running host.
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEntry, AuditFilter, AuditLog, DriverScopes, Grant, GrantStore, HostState, InstalledVersion, KeyValueStore, LinkLedger, VersionStore } from './store.ts';
import { StoreLimitError, storeLimits } from './store.ts';

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

export class SqliteStateStore implements HostState {
  private readonly db: DatabaseSync;
  readonly grants: GrantStore;
  readonly ledger: LinkLedger;
  readonly scopes: DriverScopes;
  readonly audit: AuditLog;
  readonly versions: VersionStore;

  /** `path` is a file (created with its directory) or ':memory:'. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS kv (
        driver TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (driver, key)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS grants (
        digest     TEXT PRIMARY KEY,
        driver     TEXT NOT NULL,
        version    TEXT NOT NULL,
        manifest   TEXT NOT NULL,
        granted_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS owned_links (
        driver TEXT NOT NULL,
        link    TEXT NOT NULL,
        ifindex INTEGER NOT NULL,
        peer    TEXT,
        PRIMARY KEY (driver, link)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS network_pools (
        driver TEXT NOT NULL,
        nid    TEXT NOT NULL,
        cidr   TEXT NOT NULL,
        PRIMARY KEY (driver, nid, cidr)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sandboxes (
        driver TEXT NOT NULL,
        nid    TEXT NOT NULL,
        eid    TEXT NOT NULL,
        key    TEXT NOT NULL,
        PRIMARY KEY (driver, nid, eid)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS audit (
        id          INTEGER PRIMARY KEY,
        time        TEXT NOT NULL,
        driver      TEXT NOT NULL,
        version     TEXT NOT NULL,
        op          TEXT NOT NULL,
        args        TEXT NOT NULL,
        allowed     INTEGER NOT NULL,
        errno       INTEGER,
        error       TEXT,
        duration_ms REAL NOT NULL
      );
      CREATE INDEX IF NOT EXISTS audit_driver_time ON audit (driver, time);
      CREATE TABLE IF NOT EXISTS versions (
        driver       TEXT NOT NULL,
        digest       TEXT NOT NULL,
        version      TEXT NOT NULL,
        component    TEXT NOT NULL,
        manifest     TEXT NOT NULL,
        installed_at TEXT NOT NULL,
        active       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (driver, digest)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS network_versions (
        driver TEXT NOT NULL,
        nid    TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (driver, nid)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS store_versions (
        driver  TEXT PRIMARY KEY,
        version TEXT NOT NULL
      );
    `);
    this.grants = grantStore(this.db);
    this.ledger = linkLedger(this.db);
    this.scopes = driverScopes(this.db);
    this.audit = auditLog(this.db);
    this.versions = versionStore(this.db);
  }

  async transaction<T>(fn: () => Promise<T>, commit: (result: T) => boolean): Promise<T> {
    this.audit.flush();
    this.db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
    this.db.exec(commit(result) ? 'COMMIT' : 'ROLLBACK');
    return result;
  }

  forDriver(driver: string): KeyValueStore {
    const db = this.db;
    const get = db.prepare('SELECT value FROM kv WHERE driver = ? AND key = ?');
    const upsert = db.prepare('INSERT INTO kv (driver, key, value) VALUES (?, ?, ?) ON CONFLICT (driver, key) DO UPDATE SET value = excluded.value');
    const del = db.prepare('DELETE FROM kv WHERE driver = ? AND key = ?');
    // Prefix scan as a key range, so that '%' and '_' in keys mean nothing special.
    const range = db.prepare('SELECT key, value FROM kv WHERE driver = ? AND key >= ? AND key < ? ORDER BY key');
    const all = db.prepare('SELECT key, value FROM kv WHERE driver = ? ORDER BY key');
    const count = db.prepare('SELECT count(*) AS n FROM kv WHERE driver = ?');
    const size = db.prepare('SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) AS n FROM kv WHERE driver = ?');
    // The bytes the driver holds, counted once and then kept up to date (this process is the only writer).
    let bytes: number | undefined;
    const held = () => (bytes ??= Number((size.get(driver) as { n: number }).n));
    return {
      get(key) {
        const row = get.get(driver, key) as { value: string } | undefined;
        return row?.value;
      },
      set(key, value) {
        if (key.length === 0 || utf8Length(key) > storeLimits.maxKeyBytes) throw new StoreLimitError(`key must be 1 to ${storeLimits.maxKeyBytes} bytes`);
        if (utf8Length(value) > storeLimits.maxValueBytes) throw new StoreLimitError(`value over ${storeLimits.maxValueBytes} bytes`);
        const old = get.get(driver, key) as { value: string } | undefined;
        if (old === undefined && (count.get(driver) as { n: number }).n >= storeLimits.maxKeysPerDriver) {
          throw new StoreLimitError(`driver has ${storeLimits.maxKeysPerDriver} keys already`);
        }
        const after = held() - (old === undefined ? 0 : utf8Length(key) + utf8Length(old.value)) + utf8Length(key) + utf8Length(value);
        if (after > storeLimits.maxBytesPerDriver) throw new StoreLimitError(`driver would hold over ${storeLimits.maxBytesPerDriver} bytes`);
        upsert.run(driver, key, value);
        bytes = after;
      },
      delete(key) {
        const old = get.get(driver, key) as { value: string } | undefined;
        const gone = Number(del.run(driver, key).changes) > 0;
        if (gone && old !== undefined && bytes !== undefined) bytes -= utf8Length(key) + utf8Length(old.value);
        return gone;
      },
      entries(prefix) {
        // Read row by row and stop at the budget, so a driver cannot make the host hold its whole store at once.
        const rows = prefix === '' ? all.iterate(driver) : range.iterate(driver, prefix, prefix + '\u{10FFFF}');
        const out: [string, string][] = [];
        let total = 0;
        for (const r of rows as Iterable<{ key: string; value: string }>) {
          total += r.key.length + r.value.length;
          if (total > storeLimits.maxEntriesBytes) {
            throw new StoreLimitError(`entries under ${JSON.stringify(prefix)} hold over ${storeLimits.maxEntriesBytes} bytes: ask with a narrower prefix`);
          }
          out.push([r.key, r.value]);
        }
        return out;
      },
    };
  }

  close(): void {
    this.audit.flush();
    this.db.close();
  }
}

function grantStore(db: DatabaseSync): GrantStore {
  const put = db.prepare('INSERT OR REPLACE INTO grants (digest, driver, version, manifest, granted_at) VALUES (?, ?, ?, ?, ?)');
  const get = db.prepare('SELECT digest, driver, version, manifest, granted_at AS grantedAt FROM grants WHERE digest = ?');
  const all = db.prepare('SELECT digest, driver, version, manifest, granted_at AS grantedAt FROM grants ORDER BY granted_at DESC, digest');
  const byDriver = db.prepare('SELECT digest, driver, version, manifest, granted_at AS grantedAt FROM grants WHERE driver = ? ORDER BY granted_at DESC, digest');
  const del = db.prepare('DELETE FROM grants WHERE digest = ?');
  const plain = (row: unknown) => ({ ...(row as Grant) });
  return {
    put: (g) => void put.run(g.digest, g.driver, g.version, g.manifest, g.grantedAt),
    get: (digest) => {
      const row = get.get(digest);
      return row ? plain(row) : undefined;
    },
    list: (driver) => (driver === undefined ? all.all() : byDriver.all(driver)).map(plain),
    revoke: (digest) => Number(del.run(digest).changes) > 0,
  };
}

function linkLedger(db: DatabaseSync): LinkLedger {
  const add = db.prepare('INSERT OR REPLACE INTO owned_links (driver, link, ifindex, peer) VALUES (?, ?, ?, ?)');
  const del = db.prepare('DELETE FROM owned_links WHERE driver = ? AND (link = ? OR peer = ?)');
  const renameLink = db.prepare('UPDATE owned_links SET link = ? WHERE driver = ? AND link = ?');
  const renamePeer = db.prepare('UPDATE owned_links SET peer = ? WHERE driver = ? AND peer = ?');
  const list = db.prepare('SELECT link, ifindex FROM owned_links WHERE driver = ?');
  // This process is the only writer, so an in-memory mirror of each driver's
  // links (written through) answers the broker's hot-path question cheaply.
  const mirror = new Map<string, Map<string, number>>();
  const links = (driver: string) => {
    let m = mirror.get(driver);
    if (!m) {
      m = new Map((list.all(driver) as { link: string; ifindex: number }[]).map((r) => [r.link, Number(r.ifindex)]));
      mirror.set(driver, m);
    }
    return m;
  };
  return {
    add(driver, link, index, peer) {
      add.run(driver, link, index, peer ?? null);
      links(driver).set(link, index);
    },
    remove(driver, link) {
      del.run(driver, link, link);
      mirror.delete(driver);
    },
    rename(driver, from, to) {
      renameLink.run(to, driver, from);
      renamePeer.run(to, driver, from);
      mirror.delete(driver);
    },
    indexOf: (driver, link) => links(driver).get(link),
    list: (driver) => [...links(driver).keys()].sort(),
  };
}

function driverScopes(db: DatabaseSync): DriverScopes {
  const delPools = db.prepare('DELETE FROM network_pools WHERE driver = ? AND nid = ?');
  const addPool = db.prepare('INSERT OR IGNORE INTO network_pools (driver, nid, cidr) VALUES (?, ?, ?)');
  const pools = db.prepare('SELECT DISTINCT cidr FROM network_pools WHERE driver = ? ORDER BY cidr');
  const addSandbox = db.prepare('INSERT OR REPLACE INTO sandboxes (driver, nid, eid, key) VALUES (?, ?, ?, ?)');
  const delSandbox = db.prepare('DELETE FROM sandboxes WHERE driver = ? AND nid = ? AND eid = ?');
  const delNetSandboxes = db.prepare('DELETE FROM sandboxes WHERE driver = ? AND nid = ?');
  const hasSandbox = db.prepare('SELECT 1 FROM sandboxes WHERE driver = ? AND key = ?');
  const netPools = db.prepare('SELECT cidr FROM network_pools WHERE driver = ? AND nid = ? ORDER BY cidr');
  const sandboxOf = db.prepare('SELECT key FROM sandboxes WHERE driver = ? AND nid = ? AND eid = ?');
  // Pools are read on every address or route call: kept in memory, written through.
  const poolCache = new Map<string, string[]>();
  return {
    setPools(driver, nid, cidrs) {
      db.exec('SAVEPOINT set_pools');
      try {
        delPools.run(driver, nid);
        for (const c of cidrs) addPool.run(driver, nid, c);
        db.exec('RELEASE set_pools');
      } catch (e) {
        db.exec('ROLLBACK TO set_pools');
        db.exec('RELEASE set_pools');
        throw e;
      } finally {
        poolCache.delete(driver);
      }
    },
    removeNetwork(driver, nid) {
      delPools.run(driver, nid);
      delNetSandboxes.run(driver, nid);
      poolCache.delete(driver);
    },
    pools(driver) {
      let cached = poolCache.get(driver);
      if (!cached) {
        cached = (pools.all(driver) as { cidr: string }[]).map((r) => r.cidr);
        poolCache.set(driver, cached);
      }
      return cached;
    },
    networkPools: (driver, nid) => (netPools.all(driver, nid) as { cidr: string }[]).map((r) => r.cidr),
    sandboxOf: (driver, nid, eid) => (sandboxOf.get(driver, nid, eid) as { key: string } | undefined)?.key,
    addSandbox: (driver, nid, eid, key) => void addSandbox.run(driver, nid, eid, key),
    removeSandbox: (driver, nid, eid) => void delSandbox.run(driver, nid, eid),
    hasSandbox: (driver, key) => hasSandbox.get(driver, key) !== undefined,
  };
}

function auditLog(db: DatabaseSync): AuditLog {
  const insert = db.prepare('INSERT INTO audit (time, driver, version, op, args, allowed, errno, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  // Entries are written in one transaction per driver call (or per 256), not one each.
  let pending: AuditEntry[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    db.exec('SAVEPOINT audit_flush');
    try {
      for (const e of batch) insert.run(e.time, e.driver, e.version, e.op, JSON.stringify(e.args ?? null), e.allowed ? 1 : 0, e.errno ?? null, e.error ?? null, e.durationMs);
      db.exec('RELEASE audit_flush');
    } catch (err) {
      db.exec('ROLLBACK TO audit_flush');
      db.exec('RELEASE audit_flush');
      throw err;
    }
  };
  return {
    record(e) {
      pending.push(e);
      if (pending.length >= 256) flush();
    },
    flush,
    query(f: AuditFilter = {}) {
      flush();
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (f.driver !== undefined) (where.push('driver = ?'), params.push(f.driver));
      if (f.op !== undefined) (where.push('op = ?'), params.push(f.op));
      if (f.allowed !== undefined) (where.push('allowed = ?'), params.push(f.allowed ? 1 : 0));
      if (f.since !== undefined) (where.push('time >= ?'), params.push(f.since));
      const limit = Math.max(1, Math.min(f.limit ?? 100, 100_000));
      const sql = `SELECT id, time, driver, version, op, args, allowed, errno, error, duration_ms FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${limit}`;
      return (db.prepare(sql).all(...params) as Record<string, unknown>[]).map((r) => {
        const entry: AuditEntry = {
          id: Number(r.id),
          time: String(r.time),
          driver: String(r.driver),
          version: String(r.version),
          op: String(r.op),
          args: JSON.parse(String(r.args)),
          allowed: r.allowed === 1,
          durationMs: Number(r.duration_ms),
        };
        if (r.errno !== null) entry.errno = Number(r.errno);
        if (r.error !== null) entry.error = String(r.error);
        return entry;
      });
    },
  };
}

function versionStore(db: DatabaseSync): VersionStore {
  const cols = 'driver, digest, version, component, manifest, installed_at AS installedAt, active';
  const add = db.prepare('INSERT OR IGNORE INTO versions (driver, digest, version, component, manifest, installed_at) VALUES (?, ?, ?, ?, ?, ?)');
  const all = db.prepare(`SELECT ${cols} FROM versions ORDER BY driver, installed_at, digest`);
  const byDriver = db.prepare(`SELECT ${cols} FROM versions WHERE driver = ? ORDER BY installed_at, digest`);
  const active = db.prepare(`SELECT ${cols} FROM versions WHERE driver = ? AND active = 1`);
  const clear = db.prepare('UPDATE versions SET active = 0 WHERE driver = ?');
  const set = db.prepare('UPDATE versions SET active = 1 WHERE driver = ? AND digest = ?');
  const netGet = db.prepare('SELECT digest FROM network_versions WHERE driver = ? AND nid = ?');
  const netSet = db.prepare('INSERT OR REPLACE INTO network_versions (driver, nid, digest) VALUES (?, ?, ?)');
  const netDel = db.prepare('DELETE FROM network_versions WHERE driver = ? AND nid = ?');
  const svGet = db.prepare('SELECT version FROM store_versions WHERE driver = ?');
  const svSet = db.prepare('INSERT OR REPLACE INTO store_versions (driver, version) VALUES (?, ?)');
  const row = (r: unknown): InstalledVersion => {
    const v = r as Omit<InstalledVersion, 'active'> & { active: number };
    return { ...v, active: v.active === 1 };
  };
  return {
    add: (v) => void add.run(v.driver, v.digest, v.version, v.component, v.manifest, v.installedAt),
    list: (driver) => (driver === undefined ? all.all() : byDriver.all(driver)).map(row),
    active(driver) {
      const r = active.get(driver);
      return r ? row(r) : undefined;
    },
    setActive(driver, digest) {
      db.exec('SAVEPOINT set_active');
      clear.run(driver);
      const changed = Number(set.run(driver, digest).changes);
      if (changed !== 1) {
        db.exec('ROLLBACK TO set_active');
        db.exec('RELEASE set_active');
        throw new Error(`no installed version ${digest} of ${driver}`);
      }
      db.exec('RELEASE set_active');
    },
    networkVersion: (driver, nid) => (netGet.get(driver, nid) as { digest: string } | undefined)?.digest,
    setNetworkVersion: (driver, nid, digest) => void netSet.run(driver, nid, digest),
    removeNetworkVersion: (driver, nid) => void netDel.run(driver, nid),
    storeVersion: (driver) => (svGet.get(driver) as { version: string } | undefined)?.version,
    setStoreVersion: (driver, version) => void svSet.run(driver, version),
  };
}
