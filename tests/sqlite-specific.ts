/**
 * SQLite-specific cases, run by every adapter's entry point: opening bad paths and files,
 * migrations, options, `:memory:` isolation, busy retry, several connections on one file, and
 * cross-connection events.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import {
  InvalidArgumentError,
  newJob,
  StoreError,
  type StoreEvent,
  type StoreInterface,
} from '@conveyor/shared';
import { MIGRATIONS } from '@conveyor/store-sqlite-core';
import { eventually, uniqueQueue, waitFor } from './helpers.ts';
import { type SqliteAdapter, tempDir } from './sqlite-harness.ts';

/** Declares the SQLite-specific cases for an adapter; `ran` counts each passing case. */
export function sqliteSpecificSuite(adapter: SqliteAdapter, ran: () => void): void {
  const test = (name: string, body: (dir: string) => Promise<void>) =>
    it(name, { timeout: 30_000 }, async () => {
      const dir = tempDir();
      try {
        await body(dir.path);
      } finally {
        dir.remove();
      }
      ran();
    });
  const open = async (filename: string, opts: Parameters<SqliteAdapter['create']>[0] = {}) => {
    const store = adapter.create({ filename, ...opts });
    await store.connect();
    return store;
  };
  const storeError = (code: string, pattern: RegExp) => (e: unknown) => {
    assert.ok(e instanceof StoreError, `expected a StoreError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  };

  describe(`${adapter.name}: opening`, () => {
    test('a path in a missing directory gives CANNOT_OPEN naming the path', async (dir) => {
      const filename = join(dir, 'missing', 'sub', 'jobs.db');
      await assert.rejects(open(filename), storeError('CANNOT_OPEN', /missing\/sub\/jobs\.db/));
      assert.equal(existsSync(join(dir, 'missing')), false);
    });

    test('a path whose directory is a file gives CANNOT_OPEN', async (dir) => {
      writeFileSync(join(dir, 'plain'), 'x');
      await assert.rejects(open(join(dir, 'plain', 'jobs.db')), storeError('CANNOT_OPEN', /plain/));
    });

    if (isRoot()) {
      it.skip(
        'a read-only directory gives CANNOT_OPEN (skipped: running as root, permissions do not apply)',
      );
    } else {
      test('a read-only directory gives CANNOT_OPEN', async (dir) => {
        const locked = join(dir, 'locked');
        mkdirSync(locked);
        chmodSync(locked, 0o500);
        try {
          await assert.rejects(open(join(locked, 'jobs.db')), storeError('CANNOT_OPEN', /locked/));
        } finally {
          chmodSync(locked, 0o700);
        }
      });
    }

    test('a file that is not SQLite gives NOT_A_DATABASE and stays byte-identical', async (dir) => {
      const filename = join(dir, 'notes.txt');
      const bytes = new TextEncoder().encode('these are my notes, not a database\n'.repeat(200));
      writeFileSync(filename, bytes);
      await assert.rejects(open(filename), storeError('NOT_A_DATABASE', /not an SQLite database/));
      assert.deepEqual(new Uint8Array(readFileSync(filename)), bytes);
      assert.equal(existsSync(`${filename}-wal`), false);
      assert.equal(existsSync(`${filename}-shm`), false);
    });

    test('a schema newer than the code gives SCHEMA_TOO_NEW and the file is untouched', async (dir) => {
      const filename = join(dir, 'future.db');
      const first = await open(filename);
      await first.saveJob('q', newJob('q', 'a', null));
      await first.disconnect();
      const raw = adapter.openDriver(filename);
      raw.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      raw.prepare('INSERT INTO conveyor_migrations (version, applied_at) VALUES (?, ?)').run(
        MIGRATIONS.length + 1,
        Date.now(),
      );
      raw.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      raw.exec('PRAGMA journal_mode = DELETE');
      raw.close();
      const before = new Uint8Array(readFileSync(filename));
      await assert.rejects(open(filename), storeError('SCHEMA_TOO_NEW', /newer than this code/));
      assert.deepEqual(new Uint8Array(readFileSync(filename)), before);
      assert.equal(existsSync(`${filename}-wal`), false);
    });

    test('autoMigrate: false refuses a new file, then accepts a migrated one', async (dir) => {
      const filename = join(dir, 'jobs.db');
      await assert.rejects(
        open(filename, { autoMigrate: false }),
        storeError('SCHEMA_OUTDATED', /autoMigrate/),
      );
      const migrated = await open(filename);
      await migrated.disconnect();
      const again = await open(filename, { autoMigrate: false });
      assert.equal(await again.countJobs('q', 'waiting'), 0);
      await again.disconnect();
    });

    test('migrations are recorded once per version, in WAL mode', async (dir) => {
      const filename = join(dir, 'jobs.db');
      for (let i = 0; i < 3; i++) await (await open(filename)).disconnect();
      const raw = adapter.openDriver(filename);
      const versions = raw.prepare('SELECT version FROM conveyor_migrations ORDER BY version')
        .all();
      assert.deepEqual(versions.map((r) => Number(r.version)), MIGRATIONS.map((_, i) => i + 1));
      assert.equal(String(raw.prepare('PRAGMA journal_mode').get()?.journal_mode), 'wal');
      raw.close();
    });

    test('a failed job moved back to waiting holds its deduplication key again', async () => {
      const store = await open(':memory:');
      try {
        const q = uniqueQueue();
        const dedup = { deduplication: { key: 'k' } };
        const id = await store.saveJob(q, newJob(q, 'x', 1, dedup));
        const job = await store.fetchNextJob(q, 'w', 30_000);
        await store.failJobs(q, [{ jobId: id, token: job!.lockToken!, reason: 'boom' }]);
        assert.equal(await store.findByDeduplicationKey(q, 'k'), null);
        assert.equal(await store.updateJob(q, id, { state: 'waiting', finishedAt: null }), true);
        assert.equal((await store.findByDeduplicationKey(q, 'k'))?.id, id);
        assert.equal(await store.saveJob(q, newJob(q, 'x', 2, dedup)), id);
        assert.equal(await store.countJobs(q, 'waiting'), 1);
      } finally {
        await store.disconnect();
      }
    });

    test('generated ids are never reused and skip custom ids that look like them', async () => {
      const store = await open(':memory:');
      try {
        const q = uniqueQueue();
        const first = await store.saveJob(q, newJob(q, 'x', null));
        await store.saveJob(q, newJob(q, 'x', null, { jobId: String(Number(first) + 1) }));
        const third = await store.saveJob(q, newJob(q, 'x', null));
        assert.notEqual(third, String(Number(first) + 1));
        await store.removeJob(q, third);
        const fourth = await store.saveJob(q, newJob(q, 'x', null));
        assert.notEqual(fourth, third, 'the id of a removed job is not given again');
        assert.equal(await store.countJobs(q, 'waiting'), 3);
      } finally {
        await store.disconnect();
      }
    });

    test('bad options throw InvalidArgumentError naming the option and value', () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ synchronous: 'OFF' }, 'synchronous'],
        [{ busyTimeout: -1 }, 'busyTimeout'],
        [{ pollInterval: 0 }, 'pollInterval'],
        [{ filename: '' }, 'filename'],
        [{ autoMigrate: 'yes' }, 'autoMigrate'],
      ];
      for (const [opts, option] of cases) {
        assert.throws(
          () => adapter.create(opts as Parameters<SqliteAdapter['create']>[0]),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === option,
        );
      }
      return Promise.resolve();
    });

    test('a store used before connect() rejects with NOT_CONNECTED', async () => {
      const store = adapter.create({ filename: ':memory:' });
      await assert.rejects(store.getJob('q', '1'), storeError('NOT_CONNECTED', /connect/));
      await assert.rejects(
        store.saveJob('q', newJob('q', 'a', null)),
        storeError('NOT_CONNECTED', /connect/),
      );
    });

    test('two stores on :memory: are two separate databases', async () => {
      const a = await open(':memory:');
      const b = await open(':memory:');
      try {
        const id = await a.saveJob('q', newJob('q', 'a', null));
        assert.notEqual(await a.getJob('q', id), null);
        assert.equal(await b.getJob('q', id), null);
        assert.equal(await b.countJobs('q', 'waiting'), 0);
      } finally {
        await a.disconnect();
        await b.disconnect();
      }
    });
  });

  describe(`${adapter.name}: several connections on one file`, () => {
    test('SQLITE_BUSY on begin is retried, not surfaced', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const store = await open(filename, { busyTimeout: 5 });
      const raw = adapter.openDriver(filename);
      try {
        raw.exec('BEGIN IMMEDIATE');
        let released = false;
        const timer = setTimeout(() => {
          raw.exec('COMMIT');
          released = true;
        }, 150);
        const id = await store.saveJob('q', newJob('q', 'a', null));
        clearTimeout(timer);
        assert.equal(released, true, 'the save finished only after the lock was released');
        assert.equal((await store.getJob('q', id))?.state, 'waiting');
      } finally {
        raw.close();
        await store.disconnect();
      }
    });

    test('jobs added through two connections are claimed in the order they were added', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const a = await open(filename);
      const b = await open(filename);
      try {
        const q = uniqueQueue();
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) {
          ids.push(await (i % 2 ? a : b).saveJob(q, newJob(q, 'x', { i })));
        }
        const claimed: string[] = [];
        for (let i = 0; i < 20; i++) {
          const job = await (i % 3 ? a : b).fetchNextJob(q, 'w', 30_000);
          claimed.push(job!.id);
        }
        assert.deepEqual(claimed, ids);
      } finally {
        await a.disconnect();
        await b.disconnect();
      }
    });

    test('4 connections claiming 400 jobs in batches never share a job', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const stores = await Promise.all([0, 1, 2, 3].map(() => open(filename)));
      try {
        const q = uniqueQueue();
        await stores[0].saveBulk(q, Array.from({ length: 400 }, (_, i) => newJob(q, 'x', { i })));
        const seen = new Set<string>();
        let total = 0;
        await Promise.all(stores.map(async (s, w) => {
          for (;;) {
            const jobs = await s.fetchNextJobs(q, `w${w}`, 30_000, 7);
            if (jobs.length === 0) return;
            total += jobs.length;
            for (const j of jobs) seen.add(j.id);
            const ok = await s.completeJobs(
              q,
              jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: w })),
            );
            assert.ok(ok.every(Boolean));
          }
        }));
        assert.equal(total, 400);
        assert.equal(seen.size, 400);
        assert.equal(await stores[1].countJobs(q, 'completed'), 400);
      } finally {
        for (const s of stores) await s.disconnect();
      }
    });

    test('a second connection receives waiting and completed (with returnvalue) by polling', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const producer = await open(filename);
      const listener = await open(filename, { pollInterval: 10 });
      try {
        const q = uniqueQueue();
        const on = (l: (e: StoreEvent) => void) => {
          listener.subscribe(q, l);
          return () => listener.unsubscribe(q, l);
        };
        const waiting = waitFor(on, (e) => e.type === 'waiting', { message: 'waiting' });
        const id = await producer.saveJob(q, newJob(q, 'x', null));
        assert.equal((await waiting).jobId, id);
        const completed = waitFor(on, (e) => e.type === 'completed', { message: 'completed' });
        const job = await producer.fetchNextJob(q, 'w', 30_000);
        await producer.completeJobs(q, [{
          jobId: id,
          token: job!.lockToken!,
          returnvalue: { ok: 42 },
        }]);
        const event = await completed;
        assert.equal(event.jobId, id);
        assert.deepEqual(event.data, { returnvalue: { ok: 42 } });
      } finally {
        await producer.disconnect();
        await listener.disconnect();
      }
    });

    test('this connection does not receive its own events twice', async (dir) => {
      const store = await open(join(dir, 'jobs.db'), { pollInterval: 5 });
      const peer = await open(join(dir, 'jobs.db'));
      try {
        const q = uniqueQueue();
        const seen: StoreEvent[] = [];
        store.subscribe(q, (e) => seen.push(e));
        await store.saveJob(q, newJob(q, 'mine', null));
        assert.equal(seen.length, 1, 'delivered at once, before the promise resolved');
        await peer.saveJob(q, newJob(q, 'theirs', null));
        await eventually(() => seen.length === 2, { message: 'the peer event' });
        // Let a few more polls pass (the data_version changed): still no duplicate.
        await peer.pauseJobName(q, 'other');
        await eventually(() => seen.length === 3, { message: 'the paused event' });
        assert.deepEqual(seen.map((e) => e.type + ':' + (e.jobName ?? e.data?.jobName)), [
          'waiting:mine',
          'waiting:theirs',
          'paused:other',
        ]);
      } finally {
        await store.disconnect();
        await peer.disconnect();
      }
    });

    test('a stale token cannot complete a job re-claimed by another connection', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const a = await open(filename);
      const b = await open(filename);
      try {
        const q = uniqueQueue();
        const id = await a.saveJob(q, newJob(q, 'x', null));
        const first = await a.fetchNextJob(q, 'wa', 1);
        await eventually(async () => (await b.getStalledJobs(q, 0)).length === 1, {
          message: 'lock expiry',
        });
        assert.deepEqual(await b.requeueStalledJobs(q, 5), {
          requeued: [id],
          failed: [],
          failedJobs: [],
        });
        const second = await b.fetchNextJob(q, 'wb', 30_000);
        assert.notEqual(second!.lockToken, first!.lockToken);
        assert.deepEqual(
          await a.completeJobs(q, [{ jobId: id, token: first!.lockToken!, returnvalue: 1 }]),
          [false],
        );
        assert.deepEqual(
          await b.completeJobs(q, [{ jobId: id, token: second!.lockToken!, returnvalue: 2 }]),
          [true],
        );
        assert.equal((await a.getJob(q, id))?.returnvalue, 2);
      } finally {
        await a.disconnect();
        await b.disconnect();
      }
    });

    test('twenty racing adds with one deduplication key on two connections make one job', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const a = await open(filename);
      const b = await open(filename);
      try {
        const q = uniqueQueue();
        const ids = await Promise.all(
          Array.from(
            { length: 20 },
            (_, i) =>
              (i % 2 ? a : b).saveJob(q, newJob(q, 'x', { i }, { deduplication: { key: 'k' } })),
          ),
        );
        assert.equal(new Set(ids).size, 1);
        assert.equal(await a.countJobs(q, 'waiting'), 1);
      } finally {
        await a.disconnect();
        await b.disconnect();
      }
    });

    test('rate-limit windows and global concurrency are shared between connections', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const a = await open(filename);
      const b = await open(filename);
      try {
        const q = uniqueQueue();
        await a.saveBulk(q, Array.from({ length: 10 }, (_, i) => newJob(q, 'x', { i })));
        const limiter = { max: 3, duration: 600_000 };
        assert.equal((await a.fetchNextJobs(q, 'wa', 30_000, 2, { limiter })).length, 2);
        assert.equal((await b.fetchNextJobs(q, 'wb', 30_000, 5, { limiter })).length, 1);
        assert.equal((await a.fetchNextJobs(q, 'wa', 30_000, 5, { limiter })).length, 0);
        const q2 = uniqueQueue();
        await a.saveBulk(q2, Array.from({ length: 10 }, (_, i) => newJob(q2, 'x', { i })));
        assert.equal(
          (await a.fetchNextJobs(q2, 'wa', 30_000, 3, { globalConcurrency: 4 })).length,
          3,
        );
        assert.equal(
          (await b.fetchNextJobs(q2, 'wb', 30_000, 3, { globalConcurrency: 4 })).length,
          1,
        );
        assert.equal(await a.getActiveCount(q2), 4);
      } finally {
        await a.disconnect();
        await b.disconnect();
      }
    });

    test('jobs survive closing and reopening the file, with synchronous FULL', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const first = await open(filename, { synchronous: 'FULL' });
      const q = uniqueQueue();
      const id = await first.saveJob(
        q,
        newJob(q, 'x', { deep: [1, { a: 'b' }] }, { priority: 3, attempts: 2 }),
      );
      const claimed = await first.fetchNextJob(q, 'w', 30_000);
      await first.disconnect();
      const again = await open(filename);
      try {
        const job = await again.getJob(q, id);
        assert.deepEqual(job?.data, { deep: [1, { a: 'b' }] });
        assert.deepEqual(job?.opts, { priority: 3, attempts: 2 });
        assert.equal(job?.state, 'active');
        assert.equal(job?.lockToken, claimed?.lockToken);
        assert.deepEqual(
          await again.completeJobs(q, [{
            jobId: id,
            token: claimed!.lockToken!,
            returnvalue: 'ok',
          }]),
          [true],
        );
      } finally {
        await again.disconnect();
      }
    });

    test('old events are pruned from the events table', async (dir) => {
      const filename = join(dir, 'jobs.db');
      const store: StoreInterface = await open(filename, { eventRetention: 1 });
      try {
        const q = uniqueQueue();
        await store.saveJob(q, newJob(q, 'x', null));
        await eventually(async () => {
          await store.saveJob(q, newJob(q, 'y', null));
          const raw = adapter.openDriver(filename);
          const n = Number(raw.prepare('SELECT count(*) AS n FROM conveyor_events').get()?.n);
          raw.close();
          return n <= 1;
        }, { interval: 300, message: 'pruning' });
      } finally {
        await store.disconnect();
      }
    });
  });
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
