// The embedded store on SQLite through `node:sqlite` (built into Node 22.5+
// and Deno 2). One table of (driver, key, value); WAL mode, so a crash loses
// at most the call in flight.
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type KeyValueStore, type StateStore, StoreLimitError, storeLimits } from './store.ts';

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

export class SqliteStateStore implements StateStore {
  private readonly db: DatabaseSync;

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
    `);
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
    return {
      get(key) {
        const row = get.get(driver, key) as { value: string } | undefined;
        return row?.value;
      },
      set(key, value) {
        if (key.length === 0 || utf8Length(key) > storeLimits.maxKeyBytes) throw new StoreLimitError(`key must be 1 to ${storeLimits.maxKeyBytes} bytes`);
        if (utf8Length(value) > storeLimits.maxValueBytes) throw new StoreLimitError(`value over ${storeLimits.maxValueBytes} bytes`);
        if (get.get(driver, key) === undefined && (count.get(driver) as { n: number }).n >= storeLimits.maxKeysPerDriver) {
          throw new StoreLimitError(`driver has ${storeLimits.maxKeysPerDriver} keys already`);
        }
        upsert.run(driver, key, value);
      },
      delete(key) {
        return Number(del.run(driver, key).changes) > 0;
      },
      entries(prefix) {
        const rows = (prefix === '' ? all.all(driver) : range.all(driver, prefix, prefix + '\u{10FFFF}')) as { key: string; value: string }[];
        return rows.map((r) => [r.key, r.value]);
      },
    };
  }

  close(): void {
    this.db.close();
  }
}
