/**
 * PostgreSQL-store cases beyond the conformance suite: concurrent migration, schema checks,
 * races between many connections (group limits, round-robin, dedup), transactional enqueue
 * (an error of the caller's transaction unchanged), LISTEN reconnect, connections reset during
 * postgres.js's array-type read, a new pool after a connection timeout (the refused save a
 * `StoreError` `UNAVAILABLE`), long queue names, coalesced notifications, a shared pool, schema isolation,
 * poll-only mode, `prepare: false` for the whole pool (and its refusal over a pool that prepares),
 * lookups by id that go through the primary key, batches by id that read just their jobs when the
 * statistics do not know the queue, listQueues reading a few entries a queue, a claim's one cached
 * plan, and the lock order of obliterate and of the promotion of delayed jobs.
 *
 * ```sh
 * npx -y deno@2 test -A tests/pg-specific.test.ts
 * npx -y node@24 --test tests/pg-specific.test.ts
 * npx -y bun@1 test ./tests/pg-specific.test.ts
 * ```
 *
 * @module
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectSocket, createServer, type Socket } from 'node:net';
import postgres from 'postgres';
import { PgStore, type PgStoreOptions } from '@conveyor/store-pg';
import {
  GroupFullError,
  InvalidArgumentError,
  type JobState,
  JobStateError,
  type NewJob,
  newJob,
  StoreError,
  type StoreEvent,
} from '@conveyor/shared';
import { eventually, requireTests, uniqueQueue } from './helpers.ts';
import { testServer } from './pg-server.ts';
import { flowNode, saveFamily } from './conformance/context.ts';
import { MIGRATIONS } from '../stores/pg/migrations.ts';
import { QueueEvents } from '@conveyor/core';

const server = await testServer();
const admin = postgres(server.url, { max: 4, onnotice: () => {} });
const schemas: string[] = [];
const stores: PgStore[] = [];

/** Closes the stores a test opened, then counts the test as run. */
async function ran(): Promise<void> {
  await Promise.all(stores.splice(0).map((s) => s.disconnect()));
  counter.ran();
}

/** A schema name no other test uses (dropped at the end). */
function freshSchema(suffix = ''): string {
  const name = `cv_spec_${crypto.randomUUID().slice(0, 8)}${suffix}`;
  schemas.push(name);
  return name;
}

const SHARED = freshSchema();

/** Opens a store (closed at the end). */
async function open(opts: Partial<PgStoreOptions> = {}): Promise<PgStore> {
  const store = new PgStore({
    connection: server.url,
    schema: SHARED,
    onError: () => {},
    ...opts,
  } as PgStoreOptions);
  await store.connect();
  stores.push(store);
  return store;
}

function job(q: string, name = 'task', data: unknown = {}, opts: NewJob['opts'] = {}): NewJob {
  return newJob(q, name, data, opts);
}

/** Four stores on the shared schema, each with its own pool of 3 connections (closed at the end). */
function openPeers(): Promise<PgStore[]> {
  return Promise.all(Array.from({ length: 4 }, () => open({ connection: { ...url(), max: 3 } })));
}

/** The NOTIFY channel of queue `q` in the shared schema. */
async function channelOf(q: string): Promise<string> {
  const [row] = await admin.unsafe(`SELECT "${SHARED}".channel($1) AS c`, [q]);
  return row.c as string;
}

/** Collects a queue's events. */
function recorder(store: PgStore, q: string): StoreEvent[] {
  const events: StoreEvent[] = [];
  store.subscribe(q, (e) => void events.push(e));
  return events;
}

after(async () => {
  await Promise.all(stores.map((s) => s.disconnect().catch(() => {})));
  for (const s of schemas) {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${s.replaceAll('"', '""')}" CASCADE`);
  }
  await admin.end();
  await server.stop();
});
const counter = requireTests('pg-specific');

describe('pg-specific', () => {
  describe('migrations', () => {
    it('5 stores connecting at once migrate exactly once', { timeout: 30_000 }, async () => {
      const schema = freshSchema();
      const five = Array.from(
        { length: 5 },
        () => new PgStore({ connection: server.url, schema, onError: () => {} }),
      );
      stores.push(...five);
      await Promise.all(five.map((s) => s.connect()));
      const rows = await admin.unsafe(
        `SELECT version, applied_by FROM "${schema}".migrations ORDER BY version`,
      );
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      const q = uniqueQueue();
      const id = await five[0].saveJob(q, job(q));
      assert.equal((await five[4].getJob(q, id))?.id, id);
      await ran();
    });

    /** Undoes the tables and columns that the migrations after `version` add. */
    const backTo = async (schema: string, version: number) => {
      const undo: Record<number, string> = {
        2: `DROP TABLE "${schema}".watchers`,
        3: `DROP TABLE "${schema}".child_values`,
        4: `ALTER TABLE "${schema}".jobs DROP COLUMN counted`,
        13: `ALTER TABLE "${schema}".jobs DROP COLUMN dk_count, DROP COLUMN dk_age`,
      };
      for (const m of MIGRATIONS.filter((m) => m.version > version).reverse()) {
        if (undo[m.version]) await admin.unsafe(undo[m.version]);
      }
      await admin.unsafe(`DELETE FROM "${schema}".migrations WHERE version > ${version}`);
    };

    it('a version-1 schema is migrated and gets the current functions', {
      timeout: 30_000,
    }, async () => {
      const schema = freshSchema();
      const first = await open({ schema });
      await first.disconnect();
      // Back to version 1 (no watchers table), with a function that no longer works.
      await backTo(schema, 1);
      await admin.unsafe(`CREATE OR REPLACE FUNCTION "${schema}".emit(q text, kind text,
        ids text[], datas jsonb[] DEFAULT NULL, names text[] DEFAULT NULL) RETURNS integer
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'old emit'; END $$`);
      const strict = new PgStore({ connection: server.url, schema, autoMigrate: false });
      await assert.rejects(
        strict.connect(),
        (e) => e instanceof StoreError && e.code === 'SCHEMA_OUTDATED',
      );
      const store = await open({ schema });
      const q = uniqueQueue();
      const events = recorder(store, q);
      await store.subscriptionsReady();
      const id = await store.saveJob(q, job(q));
      await eventually(() => events.some((e) => e.type === 'waiting' && e.jobId === id));
      const rows = await admin.unsafe(
        `SELECT version FROM "${schema}".migrations ORDER BY version`,
      );
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      await ran();
    });

    it('a version-2 schema with jobs in flight migrates to bytewise keys and keeps working', {
      timeout: 30_000,
    }, async () => {
      const schema = freshSchema();
      const before = await open({ schema });
      const q = uniqueQueue();
      await saveFamily(before, q, 'parent', ['child']);
      const others = await before.saveBulk(q, [job(q, 'a'), job(q, 'b')]);
      const claimed = await before.fetchNextJob(q, 'w', 30_000, { jobName: 'c' });
      assert.equal(claimed?.id, 'child');
      await before.disconnect();
      // Back to version 2: the key columns in the database's own collation, as v2 made them.
      const keyed = await admin.unsafe(
        `SELECT table_name AS t, column_name AS c FROM information_schema.columns
         WHERE table_schema = $1 AND collation_name = 'C'`,
        [schema],
      );
      assert.ok(keyed.length >= 10, `${keyed.length} bytewise key columns`);
      for (const { t, c } of keyed) {
        await admin.unsafe(
          `ALTER TABLE "${schema}".${t} ALTER COLUMN ${c} TYPE text COLLATE "default"`,
        );
      }
      await backTo(schema, 2);
      const store = await open({ schema });
      const after = await admin.unsafe(
        `SELECT count(*)::int AS n FROM information_schema.columns
         WHERE table_schema = $1 AND collation_name = 'C'`,
        [schema],
      );
      assert.equal(after[0].n, keyed.length);
      // The job claimed before the migration completes, and its parent becomes waiting.
      assert.deepEqual(
        await store.completeJobs(q, [{
          jobId: 'child',
          token: claimed!.lockToken!,
          returnvalue: 7,
        }]),
        [true],
      );
      assert.equal((await store.getJob(q, 'parent'))?.state, 'waiting');
      const next = await store.fetchNextJobs(q, 'w', 30_000, 10);
      assert.deepEqual(next.map((j) => j.id).sort(), ['parent', ...others].sort());
      await assert.rejects(
        () => store.removeJob(q, 'parent', { unlessActive: true }),
        (e) => e instanceof JobStateError,
      );
      await store.removeJob(q, 'parent');
      assert.equal(await store.getJob(q, 'child'), null);
      assert.ok((await store.listQueues()).includes(q));
      await ran();
    });

    it('a version-6 schema (remove_set with five arguments) migrates to one remove_set', {
      timeout: 30_000,
    }, async () => {
      const schema = freshSchema();
      const first = await open({ schema });
      await first.disconnect();
      // Back to version 6: remove_set without its sixth argument, and no obliterate function.
      await backTo(schema, 6);
      await admin.unsafe(`DROP FUNCTION "${schema}".obliterate(text, boolean)`);
      await admin.unsafe(`DROP FUNCTION "${schema}".remove_set(text[], text[], boolean, text[],
        boolean, text)`);
      await admin.unsafe(`CREATE FUNCTION "${schema}".remove_set(qs text[], ids text[],
        unless_active boolean DEFAULT false, states text[] DEFAULT NULL,
        finished boolean DEFAULT false) RETURNS integer
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'old remove_set'; END $$`);
      const store = await open({ schema });
      const [{ n }] = await admin.unsafe(
        `SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'remove_set'
           AND pronamespace = $1::regnamespace`,
        [`"${schema}"`],
      );
      assert.equal(n, 1);
      const q = uniqueQueue();
      const kids = uniqueQueue('kids');
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      await store.saveJob(
        kids,
        newJob(kids, 'c', {}, { jobId: 'c' }, {
          parentId: 'p',
          parentQueueName: q,
        }),
      );
      await store.obliterate(q);
      assert.equal(await store.getJob(kids, 'c'), null);
      await ran();
    });

    it('autoMigrate: false refuses a missing, old or newer schema with StoreError', {
      timeout: 30_000,
    }, async () => {
      const schema = freshSchema();
      const check = (code: string) => (e: unknown) =>
        e instanceof StoreError && e.code === code && e.message.includes(schema);
      const strict = new PgStore({ connection: server.url, schema, autoMigrate: false });
      await assert.rejects(strict.connect(), check('SCHEMA_MISSING'));
      await admin.unsafe(`CREATE SCHEMA "${schema}"`);
      await admin.unsafe(`CREATE TABLE "${schema}".migrations (version integer PRIMARY KEY)`);
      await assert.rejects(strict.connect(), check('SCHEMA_OUTDATED'));
      await admin.unsafe(`INSERT INTO "${schema}".migrations VALUES (999)`);
      await assert.rejects(strict.connect(), check('SCHEMA_TOO_NEW'));
      const auto = new PgStore({ connection: server.url, schema });
      await assert.rejects(auto.connect(), check('SCHEMA_TOO_NEW'));
      await ran();
    });

    it('an unreachable server fails connect with StoreError', { timeout: 30_000 }, async () => {
      const store = new PgStore({
        connection: { host: '127.0.0.1', port: 1, connect_timeout: 2 },
        schema: SHARED,
      });
      await assert.rejects(
        store.connect(),
        (e) => e instanceof StoreError && e.code === 'CONNECT_FAILED',
      );
      await ran();
    });

    it(
      'the jobs table has aggressive autovacuum settings and partial indexes',
      { timeout: 30_000 },
      async () => {
        await open();
        const [t] = await admin.unsafe(
          `SELECT reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = 'jobs'`,
          [SHARED],
        );
        assert.ok(
          (t.reloptions as string[]).some((o) =>
            o.startsWith('autovacuum_vacuum_scale_factor=0.01')
          ),
        );
        const idx = await admin.unsafe(
          `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'jobs_waiting'`,
          [SHARED],
        );
        assert.match(idx[0].indexdef as string, /WHERE \(state = 'waiting'::text\)/);
        await ran();
      },
    );
  });

  describe('races', () => {
    it('20 parallel claimers never exceed groupConcurrency', { timeout: 30_000 }, async () => {
      const stores = await openPeers();
      const q = uniqueQueue();
      const groups = ['a', 'b', 'c', 'd', 'e'];
      await stores[0].saveBulk(
        q,
        groups.flatMap((g) =>
          Array.from({ length: 20 }, () => job(q, 't', {}, { group: { id: g } }))
        ),
      );
      const claimed = (await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => stores[i % 4].fetchNextJobs(q, `w${i}`, 30_000, 3, { groupConcurrency: 2 }),
        ),
      )).flat();
      assert.equal(claimed.length, 10);
      for (const g of groups) {
        assert.equal(claimed.filter((j) => j.groupId === g).length, 2, `group ${g}`);
        assert.equal(await stores[1].getGroupActiveCount(q, g), 2);
      }
      await ran();
    });

    it(
      '20 parallel round-robin claimers serve the groups evenly',
      { timeout: 30_000 },
      async () => {
        const stores = await openPeers();
        const q = uniqueQueue();
        const groups = ['a', 'b', 'c', 'd'];
        for (const g of groups) {
          await stores[0].saveBulk(
            q,
            Array.from({ length: 10 }, () => job(q, 't', {}, { group: { id: g } })),
          );
        }
        const claimed = (await Promise.all(
          Array.from(
            { length: 20 },
            (_, i) => stores[i % 4].fetchNextJob(q, `w${i}`, 30_000, { groupRoundRobin: true }),
          ),
        )).filter((j) => j !== null);
        assert.equal(claimed.length, 20);
        for (const g of groups) assert.equal(claimed.filter((j) => j!.groupId === g).length, 5);
        await ran();
      },
    );

    it('globalConcurrency holds across 20 parallel claimers', { timeout: 30_000 }, async () => {
      const stores = await openPeers();
      const q = uniqueQueue();
      await stores[0].saveBulk(q, Array.from({ length: 50 }, () => job(q)));
      const claimed = (await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => stores[i % 4].fetchNextJobs(q, `w${i}`, 30_000, 2, { globalConcurrency: 7 }),
        ),
      )).flat();
      assert.equal(claimed.length, 7);
      assert.equal(await stores[0].getActiveCount(q), 7);
      await ran();
    });

    it(
      'a limiter shared by all stores allows max claims per window',
      { timeout: 30_000 },
      async () => {
        const stores = await openPeers();
        const q = uniqueQueue();
        await stores[0].saveBulk(q, Array.from({ length: 50 }, () => job(q)));
        const limiter = { max: 5, duration: 600_000 };
        const claimed = (await Promise.all(
          Array.from(
            { length: 20 },
            (_, i) => stores[i % 4].fetchNextJobs(q, `w${i}`, 30_000, 2, { limiter }),
          ),
        )).flat();
        assert.equal(claimed.length, 5);
        await ran();
      },
    );

    it('20 concurrent adds with one dedup key from 20 connections give one job', {
      timeout: 30_000,
    }, async () => {
      const stores = await openPeers();
      const q = uniqueQueue();
      const opts = { deduplication: { key: 'same' } };
      const ids = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stores[i % 4].saveJob(q, job(q, 't', { i }, opts))),
      );
      assert.equal(new Set(ids).size, 1);
      assert.equal(await stores[0].countJobs(q, 'waiting'), 1);
      await ran();
    });

    it('20 concurrent adds with one custom jobId give one job', { timeout: 30_000 }, async () => {
      const stores = await openPeers();
      const q = uniqueQueue();
      const ids = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => stores[i % 4].saveJob(q, job(q, 't', { i }, { jobId: 'only' })),
        ),
      );
      assert.deepEqual(new Set(ids), new Set(['only']));
      assert.equal(await stores[0].countJobs(q, 'waiting'), 1);
      await ran();
    });

    it('group maxSize holds under 20 concurrent adds', { timeout: 30_000 }, async () => {
      const stores = await openPeers();
      const q = uniqueQueue();
      const results = await Promise.allSettled(
        Array.from(
          { length: 20 },
          (_, i) =>
            stores[i % 4].saveJob(q, job(q, 't', { i }, { group: { id: 'g', maxSize: 5 } })),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
      assert.ok(
        results.every((r) => r.status === 'fulfilled' || r.reason instanceof GroupFullError),
      );
      assert.equal(await stores[0].getWaitingGroupCount(q, 'g'), 5);
      await ran();
    });

    it(
      'a generated id never collides with a numeric custom jobId',
      { timeout: 30_000 },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        const [{ v }] = await admin.unsafe(`SELECT last_value::text AS v FROM "${SHARED}".job_seq`);
        const next = String(Number(v) + 1);
        await store.saveJob(q, job(q, 'custom', {}, { jobId: next }));
        const generated = await store.saveJob(q, job(q, 'generated'));
        assert.notEqual(generated, next);
        assert.equal((await store.getJob(q, generated))?.name, 'generated');
        assert.equal((await store.getJob(q, next))?.name, 'custom');
        await ran();
      },
    );
  });

  describe('transactional enqueue', () => {
    it('a job saved in a committed transaction exists, and its event comes on commit', {
      timeout: 30_000,
    }, async () => {
      const sql = postgres(server.url, { max: 2, onnotice: () => {} });
      const store = await open({ connection: undefined, sql });
      const q = uniqueQueue();
      const events = recorder(store, q);
      await store.subscriptionsReady();
      let id = '';
      await sql.begin(async (tx) => {
        id = await store.withTransaction(tx).saveJob(q, job(q, 'in-tx'));
        assert.equal(await store.getJob(q, id), null, 'invisible outside before commit');
        assert.equal((await store.withTransaction(tx).getJob(q, id))?.name, 'in-tx');
      });
      assert.equal((await store.getJob(q, id))?.state, 'waiting');
      await eventually(() => events.some((e) => e.jobId === id && e.type === 'waiting'));
      await sql.end();
      await ran();
    });

    it('a job saved in a rolled-back transaction does not exist and publishes nothing', {
      timeout: 30_000,
    }, async () => {
      const sql = postgres(server.url, { max: 2, onnotice: () => {} });
      const store = await open({ connection: undefined, sql });
      const q = uniqueQueue();
      const events = recorder(store, q);
      await store.subscriptionsReady();
      let ids: string[] = [];
      await assert.rejects(
        sql.begin(async (tx) => {
          ids = [
            await store.saveJob(q, job(q, 'opt-tx'), { tx }),
            ...(await store.saveBulk(q, [job(q, 'bulk-a'), job(q, 'bulk-b')], { tx })),
            ...(await store.saveFlow([{ queueName: q, job: job(q, 'flow', {}, { jobId: 'f1' }) }], {
              tx,
            })),
          ];
          throw new Error('rollback');
        }),
        /rollback/,
      );
      assert.equal(ids.length, 4);
      for (const id of ids) assert.equal(await store.getJob(q, id), null);
      // Events of one queue arrive in order: once the marker's event is here, a notification
      // of the rolled-back jobs would have arrived before it.
      const marker = await store.saveJob(q, job(q, 'marker'));
      await eventually(() => events.some((e) => e.jobId === marker));
      assert.deepEqual(events.map((e) => e.jobId), [marker]);
      await sql.end();
      await ran();
    });

    it(
      "deduplicated and duplicated events of saves in a caller's transaction come only on commit",
      {
        timeout: 30_000,
      },
      async () => {
        const sql = postgres(server.url, { max: 2, onnotice: () => {} });
        const store = await open({ connection: undefined, sql });
        const q = uniqueQueue();
        const events = recorder(store, q);
        await store.subscriptionsReady();
        const held = await store.saveJob(q, job(q, 'held', {}, { deduplication: { key: 'k' } }));
        const custom = await store.saveJob(q, job(q, 'custom', {}, { jobId: 'c1' }));
        const answered = (commit: boolean) =>
          sql.begin(async (tx) => {
            const t = store.withTransaction(tx);
            assert.equal(
              await t.saveJob(q, job(q, 'dup', {}, { deduplication: { key: 'k' } })),
              held,
            );
            assert.equal(await t.saveJob(q, job(q, 'again', {}, { jobId: 'c1' })), custom);
            if (!commit) throw new Error('rollback');
          });
        await assert.rejects(answered(false), /rollback/);
        await answered(true);
        // Events of one queue arrive in order: past the marker's, any other would have arrived.
        const marker = await store.saveJob(q, job(q, 'marker'));
        await eventually(() => events.some((e) => e.jobId === marker));
        assert.deepEqual(
          events.map((e) => `${e.type} ${e.jobId}`),
          [
            `waiting ${held}`,
            `waiting ${custom}`,
            `deduplicated ${held}`,
            `duplicated ${custom}`,
            `waiting ${marker}`,
          ],
        );
        await sql.end();
        await ran();
      },
    );

    it(
      "a flow under an existing job in a caller's transaction: the parent stays locked and counts only on commit",
      {
        timeout: 30_000,
      },
      async () => {
        const sql = postgres(server.url, { max: 2, onnotice: () => {} });
        const store = await open({ connection: undefined, sql });
        const q = uniqueQueue();
        const sub = uniqueQueue('sub');
        await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
        const flow = (n: number) => [
          {
            queueName: sub,
            job: newJob(sub, 'r', {}, { jobId: `r${n}` }, {
              state: 'waiting-children',
              pendingChildrenCount: 1,
              parentId: 'p',
              parentQueueName: q,
            }),
          },
          {
            queueName: sub,
            job: newJob(sub, 'c', {}, { jobId: `c${n}` }, {
              parentId: `r${n}`,
              parentQueueName: sub,
            }),
          },
        ];
        const lockedOutside = async () => {
          const probe = await admin.unsafe(
            `SELECT 1 FROM "${SHARED}".jobs WHERE queue = $1 AND id = 'p' FOR UPDATE SKIP LOCKED`,
            [q],
          );
          return probe.length === 0;
        };
        for (const commit of [false, true]) {
          const outcome = sql.begin(async (tx) => {
            await store.saveFlow(flow(commit ? 1 : 0), { tx });
            assert.equal(
              (await store.withTransaction(tx).getJob(q, 'p'))?.pendingChildrenCount,
              1,
            );
            assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 0);
            assert.equal(await lockedOutside(), true, "the parent is locked by the caller's tx");
            if (!commit) throw new Error('rollback');
          });
          if (commit) await outcome;
          else await assert.rejects(outcome, /rollback/);
          assert.equal(await lockedOutside(), false);
        }
        assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 1);
        assert.equal(await store.getJob(sub, 'r0'), null);
        assert.equal((await store.getJob(sub, 'r1'))?.parentId, 'p');
        await sql.end();
        await ran();
      },
    );

    it("an error of the caller's transaction reaches the caller unchanged", {
      timeout: 30_000,
    }, async () => {
      const sql = postgres(server.url, { max: 2, onnotice: () => {} });
      const store = await open({ connection: undefined, sql });
      const q = uniqueQueue();
      const seen: unknown[] = [];
      await assert.rejects(
        sql.begin(async (tx) => {
          // The caller's own statement fails: the transaction is aborted (25P02 from then on).
          await tx.unsafe('SELECT 1/0').catch((e) => void seen.push(e));
          await store.saveJob(q, job(q), { tx }).catch((e) => void seen.push(e));
          await store.withTransaction(tx).saveBulk(q, [job(q), job(q)])
            .catch((e) => void seen.push(e));
        }),
      );
      assert.deepEqual(
        seen.map((e) => [e instanceof StoreError, (e as { code?: string }).code]),
        [[false, '22012'], [false, '25P02'], [false, '25P02']],
      );
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      await sql.end();
      await ran();
    });

    it('tx must be a postgres.js transaction: InvalidArgumentError naming tx, nothing saved', {
      timeout: 30_000,
    }, async () => {
      const store = await open();
      const q = uniqueQueue();
      await assert.rejects(
        store.saveJob(q, job(q), { tx: { not: 'sql' } }),
        (e) => e instanceof InvalidArgumentError && e.option === 'tx',
      );
      assert.throws(() => store.withTransaction(42), InvalidArgumentError);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      await ran();
    });
  });

  describe('prepared statements', () => {
    it('prepare: false that the pool contradicts is refused, naming prepare', async () => {
      const prepares = postgres(server.url, { max: 1 });
      for (
        const opts of [
          { sql: prepares, prepare: false },
          { connection: { ...url(), prepare: true }, prepare: false },
          { connection: { ...url(), prepare: false }, prepare: true },
        ]
      ) {
        assert.throws(
          () => new PgStore({ schema: SHARED, ...opts } as PgStoreOptions),
          (e) => e instanceof InvalidArgumentError && e.option === 'prepare',
        );
      }
      await prepares.end();
      await ran();
    });

    it(
      "prepare: false (poll-only mode's default) reaches the whole pool the store makes: nothing is prepared, COMMITs included",
      {
        timeout: 30_000,
      },
      async () => {
        // What the pool sends goes through a proxy: a Parse with a statement name prepares one.
        const sent: string[] = [];
        const proxy = await tcpProxy({
          reset: (chunk) => {
            sent.push(chunk);
            return false;
          },
        });
        const named = () => sent.join('').match(/P[^]{4}[a-z0-9]{6,}\0[^\0]*/g) ?? [];
        const work = async (prepare: boolean | undefined) => {
          const store = await open({
            connection: { ...url(), ...proxy.address, max: 1 },
            prepare,
            listen: false,
            pollInterval: 20,
          });
          const q = uniqueQueue();
          const events = recorder(store, q);
          await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
          // A child is saved in a transaction: BEGIN, lock the parent, insert, count, COMMIT.
          await store.saveJob(q, newJob(q, 'c', {}, {}, { parentId: 'p', parentQueueName: q }));
          const [claimed] = await store.fetchNextJobs(q, 'w', 30_000, 1);
          await store.completeJobs(q, [{
            jobId: claimed.id,
            token: claimed.lockToken!,
            returnvalue: 1,
          }]);
          await eventually(() => events.some((e) => e.type === 'waiting'), {
            message: 'a polled event',
          });
          // Nothing more of this store goes through the proxy.
          stores.splice(stores.indexOf(store), 1);
          await store.disconnect();
        };
        try {
          await work(true);
          assert.ok(
            named().some((p) => p.endsWith('commit')),
            `a preparing pool's COMMIT is seen prepared: ${named().join(' | ')}`,
          );
          for (const prepare of [false, undefined]) {
            // undefined: poll-only mode's default.
            sent.length = 0;
            await work(prepare);
            assert.deepEqual(named(), [], `prepare: ${prepare}`);
          }
        } finally {
          await proxy.close(stores.splice(0));
        }
        await ran();
      },
    );
  });

  describe('lock order against transactions that hold jobs', () => {
    /**
     * Saves, in `q` and `kids`: p (q) with children c (q) and x (kids); r (kids) with child d
     * (q); and three jobs of q with no link. Each job is named by its id.
     */
    async function flows(store: PgStore, q: string, kids: string): Promise<void> {
      await store.saveFlow([
        flowNode({ queue: q, id: 'p' }, null, 2),
        flowNode({ queue: q, id: 'c' }, { queue: q, id: 'p' }),
        flowNode({ queue: kids, id: 'x' }, { queue: q, id: 'p' }),
        flowNode({ queue: kids, id: 'r' }, null, 1),
        flowNode({ queue: q, id: 'd' }, { queue: kids, id: 'r' }),
      ]);
      await store.saveBulk(q, ['a1', 'a2', 'a3'].map((id) => job(q, id, {}, { jobId: id })));
    }

    /** How many jobs queue \`q\` has, in any state. */
    async function total(store: PgStore, q: string): Promise<number> {
      const states = ['waiting', 'waiting-children', 'delayed', 'active', 'completed', 'failed'];
      const counts = await Promise.all(states.map((st) => store.countJobs(q, st as JobState)));
      return counts.reduce((a, b) => a + b, 0);
    }

    /**
     * Starts \`start()\` while a transaction of its own connection holds what \`hold\` locks;
     * once that call waits for the transaction, runs \`body\` in it and commits. Returns how
     * the call ended.
     */
    async function whileBlocked<T>(
      hold: (tx: postgres.TransactionSql) => Promise<unknown>,
      start: () => Promise<T>,
      body: (tx: postgres.TransactionSql) => Promise<unknown>,
    ): Promise<PromiseSettledResult<T>> {
      const sql = postgres(server.url, { max: 1, onnotice: () => {} });
      let call: Promise<PromiseSettledResult<T>> | undefined;
      try {
        await sql.begin(async (tx) => {
          const [{ pid }] = await tx.unsafe(`SELECT pg_backend_pid() AS pid`);
          await hold(tx);
          call = start().then(
            (value) => ({ status: 'fulfilled', value }),
            (reason) => ({ status: 'rejected', reason }),
          );
          await eventually(async () => {
            const [{ n }] = await admin.unsafe(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE $1::integer = ANY(pg_blocking_pids(pid))`,
              [pid],
            );
            return n > 0;
          }, { message: 'the call to wait for the transaction' });
          await body(tx);
        });
      } finally {
        await sql.end();
      }
      return await call!;
    }

    /** A \`whileBlocked\` step that locks job \`id\` of queue \`q\` (of the shared schema). */
    const locking = (q: string, id: string) => (tx: postgres.TransactionSql) =>
      tx.unsafe(`SELECT 1 FROM "${SHARED}".jobs WHERE queue = $1 AND id = $2 FOR UPDATE`, [q, id]);

    it(
      'a completion, a failure or a renewal that waits for a concurrent update of its job still takes it',
      {
        timeout: 30_000,
      },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        await store.saveBulk(q, ['a', 'b', 'c'].map((id) => job(q, id, {}, { jobId: id })));
        const claimed = await store.fetchNextJobs(q, 'w', 60_000, 3);
        const token = (id: string) => claimed.find((j) => j.id === id)!.lockToken!;
        // Another transaction updates the job (as a progress update or a lock renewal does) and
        // commits while the call waits for its row: the call must act on the new version.
        const touching = (id: string) => (tx: postgres.TransactionSql) =>
          tx.unsafe(`UPDATE "${SHARED}".jobs SET progress = '7' WHERE queue = $1 AND id = $2`, [
            q,
            id,
          ]);
        const calls: Array<[string, string, () => Promise<boolean[]>]> = [
          [
            'extendLocks',
            'a',
            () => store.extendLocks(q, [{ jobId: 'a', token: token('a') }], 90_000),
          ],
          [
            'completeJobs',
            'a',
            () => store.completeJobs(q, [{ jobId: 'a', token: token('a'), returnvalue: 1 }]),
          ],
          [
            'failJobs',
            'b',
            () => store.failJobs(q, [{ jobId: 'b', token: token('b'), reason: 'x' }]),
          ],
        ];
        for (const [name, id, call] of calls) {
          const result = await whileBlocked(touching(id), call, async () => {});
          assert.deepEqual(result, { status: 'fulfilled', value: [true] }, name);
        }
        assert.equal((await store.getJob(q, 'a'))?.state, 'completed');
        assert.equal((await store.getJob(q, 'b'))?.state, 'failed');
        await ran();
      },
    );

    it('promoting delayed jobs takes them in key order, as a removal does, not in due order', {
      timeout: 30_000,
    }, async () => {
      const store = await open();
      const q = uniqueQueue();
      const now = Date.now();
      // b is due first, a second: the promotion reads them in that order.
      await store.saveBulk(q, [
        newJob(q, 't', {}, { jobId: 'a' }, { delayUntil: now + 60_000 }),
        newJob(q, 't', {}, { jobId: 'b' }, { delayUntil: now + 30_000 }),
      ]);
      assert.equal(await store.countJobs(q, 'delayed'), 2);
      // A transaction locks a, then b, as a removal of both does (key order). Had the promotion
      // locked b before it waited for a, the two would deadlock and one would be cancelled.
      const lock = (id: string) => locking(q, id);
      const promoted = await whileBlocked(
        lock('a'),
        () => store.promoteDelayedJobs(q, now + 120_000),
        lock('b'),
      );
      assert.deepEqual(promoted, { status: 'fulfilled', value: 2 });
      assert.equal((await store.getJob(q, 'a'))?.state, 'waiting');
      assert.equal((await store.getJob(q, 'b'))?.state, 'waiting');
      await ran();
    });

    it(
      "a completion, a failure or a renewal of a batch locks its jobs in key order, as a removal does, not in the table's order",
      {
        timeout: 30_000,
      },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        const table = `"${SHARED}".jobs`;
        const lock = (id: string) => locking(q, id);
        // Each pair saved second-key first, so that the table holds it out of key order; the calls
        // name it in that order too.
        const pairs = [['a1', 'b1'], ['a2', 'b2'], ['a3', 'b3']];
        await store.saveBulk(
          q,
          pairs.flatMap(([a, b]) => [b, a]).map((id) => job(q, id, {}, { jobId: id })),
        );
        const claimed = await store.fetchNextJobs(q, 'w', 60_000, 6);
        assert.equal(claimed.length, 6);
        const token = (id: string) => claimed.find((j) => j.id === id)!.lockToken!;
        const place = async (id: string) => {
          const [{ t }] = await admin.unsafe(
            `SELECT ctid::text AS t FROM ${table} WHERE queue = $1 AND id = $2`,
            [q, id],
          );
          const [page, item] = (t as string).slice(1, -1).split(',').map(Number);
          return page * 1_000_000 + item;
        };
        const calls: Array<[string, string[], () => Promise<boolean[]>]> = [
          [
            'extendLocks',
            pairs[0],
            () =>
              store.extendLocks(
                q,
                pairs[0].toReversed().map((id) => ({ jobId: id, token: token(id) })),
                90_000,
              ),
          ],
          ['completeJobs', pairs[1], () =>
            store.completeJobs(
              q,
              pairs[1].toReversed().map((id) => ({ jobId: id, token: token(id), returnvalue: 1 })),
            )],
          ['failJobs', pairs[2], () =>
            store.failJobs(
              q,
              pairs[2].toReversed().map((id) => ({ jobId: id, token: token(id), reason: 'x' })),
            )],
        ];
        for (const [name, [a, b], call] of calls) {
          assert.ok(await place(b) < await place(a), `${name}: ${b} before ${a} in the table`);
          // A transaction locks a, then b, as a removal of both does (key order). A call that
          // locked b before it waited for a would deadlock with it, and one would be cancelled.
          const result = await whileBlocked(lock(a), call, lock(b));
          assert.deepEqual(result, { status: 'fulfilled', value: [true, true] }, name);
        }
        assert.equal((await store.getJob(q, 'a2'))?.state, 'completed');
        assert.equal((await store.getJob(q, 'b3'))?.state, 'failed');
        await ran();
      },
    );

    it('obliterate takes the jobs of its queue in key order, as a batch of them is taken', {
      timeout: 30_000,
    }, async () => {
      // A schema of its own, holding only this queue: the planner would read it all in the
      // table's order if it could.
      const schema = freshSchema();
      const store = await open({ schema });
      const q = uniqueQueue();
      const keys = Array.from({ length: 1000 }, (_, i) => `k${String(i).padStart(3, '0')}`);
      // Saved out of key order, so that the table's order is not the keys' order.
      const shuffled = keys.map((_, i) => keys[(i * 7) % keys.length]);
      assert.equal(new Set(shuffled).size, keys.length);
      await store.saveBulk(q, shuffled.map((k) => job(q, 't', {}, { jobId: k })));
      await admin.unsafe(`ANALYZE "${schema}".jobs`);
      let free: string[] = [];
      const gone = await whileBlocked(
        (tx) =>
          tx.unsafe(`SELECT 1 FROM "${schema}".jobs WHERE queue = $1 AND id = 'k500' FOR UPDATE`, [
            q,
          ]),
        () => store.obliterate(q, { force: true }),
        async () => {
          // obliterate waits for k500: it holds every job before it, and none after.
          const rows = await admin.unsafe(
            `SELECT id FROM "${schema}".jobs WHERE queue = $1 ORDER BY id FOR UPDATE SKIP LOCKED`,
            [q],
          );
          free = rows.map((r) => r.id as string);
        },
      );
      assert.equal(gone.status, 'fulfilled', String((gone as PromiseRejectedResult).reason));
      assert.deepEqual(free, keys.slice(501));
      assert.equal(await total(store, q), 0);
      await ran();
    });

    it('a completion holding a child takes its parent while obliterate waits: no deadlock', {
      timeout: 30_000,
    }, async () => {
      const store = await open();
      // c: child of p, both in q; x: child in another queue of p; d: job of q whose parent r
      // stays in the other queue.
      for (const [where, child] of [['q', 'c'], ['kids', 'x'], ['q', 'd']]) {
        const q = uniqueQueue();
        const kids = uniqueQueue('kids');
        const queueOf = (w: string) => (w === 'q' ? q : kids);
        await flows(store, q, kids);
        const claimed = await store.fetchNextJob(queueOf(where), 'w', 30_000, { jobName: child });
        assert.equal(claimed?.id, child);
        const gone = await whileBlocked(
          // A completion's first step: the child's row.
          locking(queueOf(where), child),
          () => store.obliterate(q, { force: true }),
          // Then the rest of it, which locks the parent.
          async (tx) =>
            assert.deepEqual(
              await store.withTransaction(tx).completeJobs(queueOf(where), [
                { jobId: child, token: claimed!.lockToken!, returnvalue: 1 },
              ]),
              [true],
            ),
        );
        assert.equal(gone.status, 'fulfilled', String((gone as PromiseRejectedResult).reason));
        assert.equal(await total(store, q), 0);
        assert.equal(await store.getJob(kids, 'x'), null);
        // r counts d once: completed (when d is the child held) or removed unfinished.
        const r = await store.getJob(kids, 'r');
        assert.deepEqual([r?.state, r?.pendingChildrenCount], ['waiting', 0], child);
      }
      await ran();
    });

    it(
      'a child saved under a job of the queue or a descendant while obliterate waits for it goes too',
      {
        timeout: 30_000,
      },
      async () => {
        const store = await open();
        // Under p (a parent already), a1 (no parent, no child) and x (a child of p, in kids).
        for (const [where, parent] of [['q', 'p'], ['q', 'a1'], ['kids', 'x']]) {
          const q = uniqueQueue();
          const kids = uniqueQueue('kids');
          await flows(store, q, kids);
          const late = newJob(kids, 'late', {}, { jobId: 'late' }, {
            parentId: parent,
            parentQueueName: where === 'q' ? q : kids,
          });
          const gone = await whileBlocked(
            (tx) => store.withTransaction(tx).saveJob(kids, late),
            () => store.obliterate(q),
            async () => {},
          );
          assert.equal(gone.status, 'fulfilled', String((gone as PromiseRejectedResult).reason));
          assert.equal(await store.getJob(kids, 'late'), null, `the child of ${parent}`);
          assert.equal(await total(store, q), 0);
        }
        await ran();
      },
    );

    it('a job claimed while obliterate waits for it refuses it, and nothing is removed', {
      timeout: 30_000,
    }, async () => {
      const store = await open();
      // a2: a job of q with no link; x: a child of p in another queue.
      for (const [where, target] of [['q', 'a2'], ['kids', 'x']]) {
        const q = uniqueQueue();
        const kids = uniqueQueue('kids');
        const queue = where === 'q' ? q : kids;
        await flows(store, q, kids);
        const before = await total(store, q);
        let claimedId = '';
        const refused = await whileBlocked(
          (tx) =>
            tx.unsafe(`SELECT 1 FROM "${SHARED}".jobs WHERE queue = $1 AND name = $2 FOR UPDATE`, [
              queue,
              target,
            ]),
          () => store.obliterate(q),
          async (tx) => {
            const got = await store.withTransaction(tx).fetchNextJob(queue, 'w', 30_000, {
              jobName: target,
            });
            claimedId = got!.id;
          },
        );
        assert.equal(refused.status, 'rejected');
        const e = (refused as PromiseRejectedResult).reason;
        assert.equal(e.code, 'QUEUE_ACTIVE', String(e));
        assert.match(e.message, new RegExp(`job ${queue}/${claimedId} is active`));
        assert.equal(await total(store, q), before);
        assert.equal((await store.getJob(queue, claimedId))?.state, 'active');
        assert.notEqual(await store.getJob(kids, 'x'), null);
      }
      await ran();
    });

    it(
      'a limited claim in flight when the manual rate limit is set takes no job put back after it',
      {
        timeout: 30_000,
      },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        const limiter = { max: 100, duration: 3_600_000 };
        await store.saveJob(q, job(q, 'a'));
        // `a` runs; its worker will set the limit and put it back (Worker.RateLimitError).
        const a = await store.fetchNextJob(q, 'w1', 30_000, { limiter });
        assert.equal(a?.name, 'a');
        await store.saveJob(q, job(q, 'x'));
        let limited: Promise<unknown> | undefined;
        let settled = false;
        const claim = await whileBlocked(
          // A claim of 2 takes x, then waits here to count it in the limiter's window.
          (tx) =>
            tx.unsafe(
              `SELECT 1 FROM "${SHARED}".rates WHERE queue = $1 AND key = '' FOR UPDATE`,
              [q],
            ),
          () => store.fetchNextJobs(q, 'w2', 30_000, 2, { limiter }),
          async (tx) => {
            const [{ pid }] = await tx.unsafe(`SELECT pg_backend_pid() AS pid`);
            limited = store.setRateLimit(q, 60_000)
              .then(() => store.releaseLock(q, a!.id, a!.lockToken!))
              .finally(() => (settled = true));
            // The limit and the put-back are stored, or the limit waits for the claim in flight.
            await eventually(async () => {
              if (settled) return true;
              const [{ n }] = await admin.unsafe(
                `SELECT count(*)::int AS n FROM pg_stat_activity w, pg_stat_activity c
               WHERE $1::integer = ANY(pg_blocking_pids(c.pid))
                 AND c.pid = ANY(pg_blocking_pids(w.pid))`,
                [pid],
              );
              return n > 0;
            }, { message: 'the limit stored, or waiting for the claim' });
          },
        );
        await limited;
        assert.equal(claim.status, 'fulfilled', String((claim as PromiseRejectedResult).reason));
        const names = (claim as PromiseFulfilledResult<{ name: string }[]>).value.map((j) =>
          j.name
        );
        assert.deepEqual(
          names,
          ['x'],
          'the claim began before the limit: x, but not a put back after',
        );
        assert.equal((await store.getJob(q, a!.id))?.state, 'waiting');
        assert.deepEqual(await store.fetchNextJobs(q, 'w3', 30_000, 2, { limiter }), []);
        await ran();
      },
    );
  });

  describe('events', () => {
    it('a 200-character queue name works end to end', { timeout: 30_000 }, async () => {
      const store = await open();
      const q = 'q'.repeat(190) + crypto.randomUUID().slice(0, 10);
      assert.equal(q.length, 200);
      const events = recorder(store, q);
      const id = await store.saveJob(q, job(q, 'long'));
      const [claimed] = await store.fetchNextJobs(q, 'w', 30_000, 1);
      assert.equal(claimed.id, id);
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: claimed.lockToken!, returnvalue: 1 }]),
        [true],
      );
      await eventually(() => events.some((e) => e.type === 'completed' && e.jobId === id));
      assert.deepEqual(events.filter((e) => e.jobId === id).map((e) => e.type), [
        'waiting',
        'active',
        'completed',
      ]);
      assert.ok((await store.listQueues()).includes(q));
      await ran();
    });

    it(
      'a bulk add sends few notifications, expanded into one event per job',
      { timeout: 30_000 },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        const events = recorder(store, q);
        const raw: string[] = [];
        const channel = await channelOf(q);
        const listener = await admin.listen(channel, (p) => void raw.push(p));
        const ids = await store.saveBulk(q, Array.from({ length: 1000 }, () => job(q)));
        await eventually(() => events.length >= 1000, { timeout: 10_000 });
        assert.deepEqual(events.map((e) => e.jobId), ids);
        await eventually(() => raw.length > 0);
        assert.ok(raw.length <= 4, `${raw.length} notifications for 1000 jobs`);
        assert.ok(raw.every((p) => new TextEncoder().encode(p).length < 8000));
        assert.ok(events.every((e) => e.jobName === 'task'), 'the shared name, sent once');
        // Names that differ travel one per job, through every slice.
        events.length = 0;
        const names = Array.from({ length: 1000 }, (_, i) => `n${i % 7}`);
        const mixed = await store.saveBulk(q, names.map((n) => job(q, n)));
        await eventually(() => events.length >= 1000, { timeout: 10_000 });
        assert.deepEqual(events.map((e) => e.jobId), mixed);
        assert.deepEqual(events.map((e) => e.jobName), names);
        await listener.unlisten();
        await ran();
      },
    );

    it(
      'a failed batch sends one notification per kind, expanded into one event per job',
      { timeout: 30_000 },
      async () => {
        const store = await open();
        const q = uniqueQueue();
        await store.saveBulk(q, Array.from({ length: 30 }, (_, i) => job(q, 'task', { i })));
        const claimed = await store.fetchNextJobs(q, 'w', 60_000, 30);
        assert.equal(claimed.length, 30);
        const events = recorder(store, q);
        await store.subscriptionsReady();
        const raw: string[] = [];
        const channel = await channelOf(q);
        const listener = await admin.listen(channel, (p) => void raw.push(p));
        // 10 fail for good, 10 retry now, 10 retry in a minute.
        const later = Date.now() + 60_000;
        const retryAt = (i: number) => i < 10 ? null : i < 20 ? Date.now() - 1_000 : later;
        const ok = await store.failJobs(
          q,
          claimed.map((j, i) => ({
            jobId: j.id,
            token: j.lockToken!,
            reason: `boom ${i}`,
            retryAt: retryAt(i),
          })),
        );
        assert.deepEqual(ok, claimed.map(() => true));
        await eventually(() => events.length >= 50, { timeout: 10_000 });
        const ids = (type: string) =>
          events.filter((e) => e.type === type).map((e) => e.jobId).sort();
        const sorted = (from: number, to: number) =>
          claimed.slice(from, to).map((j) => j.id).sort();
        assert.deepEqual(ids('failed'), sorted(0, 10));
        assert.deepEqual(ids('retrying'), sorted(10, 30));
        assert.deepEqual(ids('waiting'), sorted(10, 20));
        assert.deepEqual(ids('delayed'), sorted(20, 30));
        const failed = events.find((e) => e.type === 'failed' && e.jobId === claimed[3].id);
        assert.deepEqual(failed?.data, { failedReason: 'boom 3', attemptsMade: 1 });
        const delayed = events.find((e) => e.type === 'delayed');
        assert.deepEqual(delayed?.data, { delayUntil: later });
        // One a kind: failed, retrying, waiting, delayed (a failure sent one or two of its own).
        await eventually(() => raw.length >= 4);
        assert.equal(raw.length, 4, `${raw.length} notifications for 30 failures`);
        await listener.unlisten();
        await ran();
      },
    );

    it('active, completed and drained are published only while a subscriber wants them', {
      timeout: 30_000,
    }, async () => {
      const worker = await open();
      const q = uniqueQueue();
      const seen: StoreEvent[] = [];
      worker.subscribe(q, (e) => void seen.push(e), ['waiting']);
      await worker.subscriptionsReady();
      const channel = await channelOf(q);
      const raw: string[] = [];
      const listener = await admin.listen(channel, (p) => void raw.push(JSON.parse(p).t));
      /** Runs one job through save, claim and complete; returns the notification types sent. */
      const cycle = async (): Promise<string[]> => {
        raw.length = 0;
        const id = await worker.saveJob(q, job(q));
        const [c] = await worker.fetchNextJobs(q, 'w', 30_000, 1);
        assert.equal(c.id, id);
        await worker.completeJobs(q, [{ jobId: id, token: c.lockToken!, returnvalue: 1 }]);
        await worker.publish({ type: 'drained', queueName: q, timestamp: Date.now() });
        // Notifications arrive in commit order: once the marker is here, the rest came.
        await admin.unsafe(`SELECT pg_notify($1, '{"t":"marker"}')`, [channel]);
        await eventually(() => raw.includes('marker'));
        return raw.filter((t) => t !== 'marker');
      };
      assert.deepEqual(await cycle(), ['waiting']);
      assert.ok(seen.some((e) => e.type === 'waiting'));
      // A subscriber that wants every event, in another process: the queue is watched.
      const watcher = await open();
      const events = recorder(watcher, q);
      await watcher.subscriptionsReady();
      assert.deepEqual(await cycle(), ['waiting', 'active', 'completed', 'drained']);
      await eventually(() => events.some((e) => e.type === 'completed'));
      assert.ok(events.some((e) => e.type === 'active'));
      // Once the watch lapses (the watcher is gone), they stop again.
      watcher.unsubscribe(q);
      await admin.unsafe(`UPDATE "${SHARED}".watchers SET until = 0 WHERE queue = $1`, [q]);
      assert.deepEqual(await cycle(), ['waiting']);
      await listener.unlisten();
      await ran();
    });

    it('QueueEvents in another process hears completed once waitUntilReady resolves', {
      timeout: 30_000,
    }, async () => {
      const a = await open();
      const b = await open();
      const q = uniqueQueue();
      // The job is claimed first, so that it completes right after waitUntilReady resolves.
      const id = await a.saveJob(q, job(q));
      const [c] = await a.fetchNextJobs(q, 'w', 30_000, 1);
      const events = new QueueEvents(q, { store: b });
      await events.waitUntilReady();
      const heard = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no completed event')), 5_000);
        events.on('completed', (e) => (clearTimeout(timer), resolve(e.jobId)));
      });
      await a.completeJobs(q, [{ jobId: id, token: c.lockToken!, returnvalue: 1 }]);
      assert.equal(await heard, id);
      await events.close();
      await ran();
    });

    it('after pg_terminate_backend of the listener, the store listens again and workers go on', {
      timeout: 30_000,
    }, async () => {
      const errors: Error[] = [];
      const store = await open({ onError: (e) => void errors.push(e) });
      const q = uniqueQueue();
      const events = recorder(store, q);
      await store.subscriptionsReady();
      await store.saveJob(q, job(q));
      await eventually(() => events.length === 1);
      const channel = await channelOf(q);
      const killed = await admin.unsafe(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
         WHERE application_name = 'conveyor-listener' AND query LIKE '%' || $1 || '%'`,
        [channel],
      );
      assert.ok(killed.length >= 1);
      await eventually(() => errors.length > 0, { message: 'onError about the dropped listener' });
      // Jobs saved after the drop are announced again once the store has re-listened.
      const id = await eventually(async () => {
        const id = await store.saveJob(q, job(q));
        await new Promise((r) => setTimeout(r, 50));
        return events.some((e) => e.jobId === id) ? id : null;
      }, { timeout: 10_000, interval: 100, message: 'events after reconnect' });
      const claimed = await store.fetchNextJobs(q, 'w', 30_000, 10);
      assert.ok(claimed.some((j) => j.id === id));
      await ran();
    });

    it(
      'after every connection of the pool is terminated, calls work again',
      { timeout: 30_000 },
      async () => {
        const store = await open({
          connection: { ...url(), connection: { application_name: 'conveyor-pool-kill' } },
        });
        const q = uniqueQueue();
        await store.saveJob(q, job(q));
        await admin.unsafe(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'conveyor-pool-kill'`,
        );
        const got = await eventually(async () => {
          try {
            return await store.fetchNextJob(q, 'w', 30_000);
          } catch {
            return null;
          }
        }, { message: 'a claim after the pool was terminated' });
        assert.equal(got.state, 'active');
        await ran();
      },
    );

    it(
      'connections reset while postgres.js would read the array types: no unhandled rejection',
      { timeout: 30_000 },
      async () => {
        // Once armed, the proxy resets any connection that sends postgres.js's array-type query:
        // postgres.js leaves that read's promise unhandled (porsager/postgres#1192), so a new
        // connection of the pool that read them again when the server went away would crash
        // the process; and this one would never get through.
        let armed = false;
        let dropped = 0;
        const proxy = await tcpProxy({
          reset: (chunk) => {
            const reset = armed && chunk.includes('typcategory');
            if (reset) dropped++;
            return reset;
          },
        });
        try {
          const store = await open({ connection: { ...url(), ...proxy.address, max: 2 } });
          const q = uniqueQueue();
          await store.saveJob(q, job(q));
          armed = true;
          // Every connection goes; the pool and the listener open new ones.
          proxy.dropAll();
          const id = await eventually(() => store.saveJob(q, job(q)).catch(() => null), {
            message: 'a save after the connections were dropped',
          });
          assert.equal((await store.getJob(q, id))?.state, 'waiting');
          assert.equal(dropped, 0, 'no new connection read the array types');
        } finally {
          await proxy.close(stores.splice(0));
        }
        await ran();
      },
    );

    for (const operation of ['saveJob', 'publish'] as const) {
      it(
        `a connection attempt that times out (${operation}) makes the store replace its pool and its listener`,
        { timeout: 30_000 },
        async () => {
          // postgres.js can leave a slot of its pool unable to connect again (every attempt ends
          // in CONNECT_TIMEOUT); here the proxy leaves new connections unanswered for a while.
          let hang = false;
          const proxy = await tcpProxy({ hang: () => hang });
          const errors: Error[] = [];
          try {
            const store = await open({
              connection: { ...url(), ...proxy.address, max: 1, connect_timeout: 1 },
              onError: (e) => void errors.push(e),
            });
            const q = uniqueQueue();
            const events = recorder(store, q);
            await store.subscriptionsReady();
            hang = true;
            proxy.dropAll();
            // The first save may still meet the dropped connection; the next one connects anew.
            // Either is refused with the store's typed error, the driver's as its cause.
            const refusals: unknown[] = [];
            const act = operation === 'saveJob'
              ? () => store.saveJob(q, job(q))
              : () => store.publish({ type: 'drained', queueName: q, timestamp: Date.now() });
            await eventually(
              () =>
                act().then(() => false, (e) => {
                  refusals.push(e);
                  return (e as { cause?: { code?: string } }).cause?.code === 'CONNECT_TIMEOUT';
                }),
              { message: 'a save timing out connecting' },
            );
            for (const e of refusals) {
              assert.ok(e instanceof StoreError && e.code === 'UNAVAILABLE', String(e));
              assert.match(
                e.message,
                new RegExp(`^PostgreSQL could not be reached during ${operation}`),
              );
            }
            const renewed = errors.find((e) => (e as StoreError).code === 'POOL_RENEWED');
            assert.ok(renewed, `POOL_RENEWED reported (got ${errors.map((e) => e.message)})`);
            // The listener's attempts time out too; it is replaced as well.
            await eventually(
              () => errors.filter((e) => /CONNECT_TIMEOUT/.test(e.message)).length >= 2,
              {
                message: 'the listener timing out as well',
              },
            );
            hang = false;
            const id = await store.saveJob(q, job(q));
            assert.equal((await store.getJob(q, id))?.state, 'waiting');
            await eventually(async () => {
              const next = await store.saveJob(q, job(q));
              await new Promise((r) => setTimeout(r, 50));
              return events.some((e) => e.jobId === next);
            }, { timeout: 10_000, interval: 100, message: 'events through the new listener' });
          } finally {
            await proxy.close(stores.splice(0));
          }
          await ran();
        },
      );
    }

    it(
      'poll-only mode (no LISTEN) receives the events of another store',
      { timeout: 30_000 },
      async () => {
        const polling = await open({ listen: false, pollInterval: 20 });
        const other = await open();
        const q = uniqueQueue();
        const events = recorder(polling, q);
        await polling.subscriptionsReady();
        await eventually(async () => {
          const [row] = await admin.unsafe(
            `SELECT 1 FROM "${SHARED}".settings WHERE k = 'poll_until'`,
          );
          return row !== undefined;
        });
        const id = await other.saveJob(q, job(q));
        await eventually(() => events.some((e) => e.jobId === id && e.type === 'waiting'));
        await ran();
      },
    );
  });

  describe('plans', () => {
    /**
     * Runs `body` on a store of a fresh schema whose only connection is `sql` (so the statistics
     * and prepared statements read there are the store's), with `n` jobs waiting in `q` and the
     * jobs table analyzed; closes both and counts the test as run.
     */
    async function analyzedBacklog(
      n: number,
      body: (c: { sql: postgres.Sql; store: PgStore; q: string; schema: string }) => Promise<void>,
    ): Promise<void> {
      const schema = freshSchema();
      const sql = postgres(server.url, { max: 1, onnotice: () => {} });
      const store = new PgStore({ sql, schema, onError: () => {} });
      try {
        await store.connect();
        const q = uniqueQueue();
        await store.saveBulk(q, Array.from({ length: n }, (_, i) => job(q, 'task', { i })));
        await sql.unsafe(`ANALYZE "${schema}".jobs`);
        await body({ sql, store, q, schema });
      } finally {
        await store.disconnect();
        await sql.end();
      }
      await ran();
    }

    /** Entries of `index` (of the jobs table) read so far by the connection `sql`. */
    async function entriesRead(sql: postgres.Sql, schema: string, index: string): Promise<number> {
      await sql`SELECT pg_stat_force_next_flush()`;
      const [row] = await sql`SELECT idx_tup_read AS n FROM pg_stat_user_indexes
        WHERE schemaname = ${schema} AND indexrelname = ${index}`;
      return Number(row.n);
    }

    it(
      'statements that find jobs by id read the primary key, not every active job of the queue',
      { timeout: 60_000 },
      async () => {
        // Statistics taken while no job was active, then 2,000 claims: the planner then thought
        // the partial index of active jobs cheaper than the primary key for lookups by id, and
        // each statement read every active job of the queue.
        await analyzedBacklog(2_000, async ({ sql, store, q, schema }) => {
          const active = await store.fetchNextJobs(q, 'w', 60_000, 2_000);
          assert.equal(active.length, 2_000);
          // jobs_active entries read by one store call (the statistics of this one connection).
          const reads = async (call: () => Promise<unknown>): Promise<number> => {
            const before = await entriesRead(sql, schema, 'jobs_active');
            await call();
            return await entriesRead(sql, schema, 'jobs_active') - before;
          };
          const take = (n: number) => active.splice(0, n);
          const calls: Record<string, () => Promise<unknown>> = {
            completeJobs: () =>
              store.completeJobs(
                q,
                take(50).map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null })),
              ),
            failJobs: () =>
              store.failJobs(
                q,
                take(50).map((j) => ({ jobId: j.id, token: j.lockToken!, reason: 'x' })),
              ),
            extendLock: () => {
              const [j] = take(1);
              return store.extendLock(q, j.id, 60_000, j.lockToken!);
            },
            extendLocks: () =>
              store.extendLocks(
                q,
                take(50).map((j) => ({ jobId: j.id, token: j.lockToken! })),
                60_000,
              ),
            releaseLock: () => {
              const [j] = take(1);
              return store.releaseLock(q, j.id, j.lockToken!);
            },
            moveToDelayed: () => {
              const [j] = take(1);
              return store.moveToDelayed(q, j.id, j.lockToken!, Date.now() + 60_000);
            },
            moveToWaitingChildren: () => {
              const [j] = take(1);
              return store.moveToWaitingChildren(q, j.id, j.lockToken!);
            },
            updateJob: () => {
              const [j] = take(1);
              return store.updateJob(q, j.id, { progress: 50 }, { token: j.lockToken! });
            },
            requeueStalledJobs: async () => {
              // 50 expired locks: the sweep reads just those through the index, then the jobs
              // themselves by id.
              const ids = take(50).map((j) => j.id);
              await sql.unsafe(
                `UPDATE "${schema}".jobs SET lock_until = 0 WHERE queue = $1 AND id = ANY($2)`,
                [q, ids],
              );
              return store.requeueStalledJobs(q, 1);
            },
          };
          const read: Record<string, number> = {};
          for (const [name, call] of Object.entries(calls)) read[name] = await reads(call);
          for (const [name, n] of Object.entries(read)) {
            assert.ok(
              n <= 100,
              `${name} read ${n} active jobs' index entries: ${JSON.stringify(read)}`,
            );
          }
        });
      },
    );
    it(
      'batches taken by id read just their jobs when the statistics do not know the queue',
      { timeout: 60_000 },
      async () => {
        // The statistics know another queue only: the planner then costed this queue at one row
        // and read all of its primary-key entries to find each batch of ids.
        await analyzedBacklog(500, async ({ sql, store, schema }) => {
          const q = uniqueQueue();
          await store.saveBulk(q, Array.from({ length: 2_000 }, (_, i) => job(q, 'task', { i })));
          const dedup = await store.saveBulk(
            q,
            Array.from(
              { length: 50 },
              (_, i) => job(q, 'task', {}, { deduplication: { id: `d${i}` } }),
            ),
          );
          const active = await store.fetchNextJobs(q, 'w', 60_000, 2_050);
          assert.equal(active.length, 2_050);
          const plain = active.filter((j) => !dedup.includes(j.id));
          const followed = active.filter((j) => dedup.includes(j.id));
          const done = (jobs: typeof active) =>
            jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null }));
          // Primary-key entries read by one store call (the statistics of this one connection).
          const reads = async (call: () => Promise<boolean[]>): Promise<number> => {
            const before = await entriesRead(sql, schema, 'jobs_pkey');
            assert.deepEqual(await call(), Array(50).fill(true));
            return await entriesRead(sql, schema, 'jobs_pkey') - before;
          };
          const read = {
            completeJobs: await reads(() => store.completeJobs(q, done(plain.slice(0, 50)))),
            failJobs: await reads(() =>
              store.failJobs(
                q,
                plain.slice(50, 100).map((j) => ({
                  jobId: j.id,
                  token: j.lockToken!,
                  reason: 'x',
                })),
              )
            ),
            extendLocks: await reads(() =>
              store.extendLocks(
                q,
                plain.slice(100, 150).map((j) => ({ jobId: j.id, token: j.lockToken! })),
                60_000,
              )
            ),
            // A deduplication key to release: the completion's follow-ups run too.
            'completeJobs with follow-ups': await reads(() =>
              store.completeJobs(q, done(followed))
            ),
          };
          // The follow-ups ran: the keys are free again.
          const [again] = await store.saveBulk(q, [
            job(q, 'task', {}, { deduplication: { id: 'd0' } }),
          ]);
          assert.ok(!dedup.includes(again), 'a released key takes a new job');
          for (const [name, n] of Object.entries(read)) {
            assert.ok(
              n <= 500 && n > 0,
              `${name} read ${n} primary-key entries: ${JSON.stringify(read)}`,
            );
          }
        });
      },
    );
    it('listQueues reads a few index entries a queue, not every job', {
      timeout: 60_000,
    }, async () => {
      await analyzedBacklog(5_000, async ({ sql, store, q, schema }) => {
        const other = uniqueQueue();
        await store.saveBulk(other, [job(other)]);
        // Rows and index entries read by this one connection.
        const reads = async () => {
          await sql`SELECT pg_stat_force_next_flush()`;
          const [row] = await sql`SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
              + (SELECT idx_tup_read FROM pg_stat_user_indexes
                 WHERE schemaname = ${schema} AND indexrelname = 'jobs_pkey') AS n
            FROM pg_stat_user_tables WHERE schemaname = ${schema} AND relname = 'jobs'`;
          return Number(row.n);
        };
        const before = await reads();
        assert.deepEqual(await store.listQueues(), [q, other].sort());
        const n = await reads() - before;
        assert.ok(n > 0 && n <= 20, `listQueues read ${n} rows and index entries`);
      });
    });
    it(
      'claims keep one cached plan, which reads no more of the table than the jobs it takes',
      { timeout: 60_000 },
      async () => {
        // With statistics of a long backlog, a claim whose estimates depended on its parameters
        // was planned afresh every time, and its generic plan joined through a sequential scan.
        await analyzedBacklog(10_000, async ({ sql, store, q, schema }) => {
          const claims = async (n: number) => {
            for (let i = 0; i < n; i++) {
              assert.equal((await store.fetchNextJobs(q, 'w', 60_000, 50)).length, 50);
            }
          };
          const plans = async () => {
            const [row] = await sql`SELECT generic_plans::integer AS g, custom_plans::integer AS c
              FROM pg_prepared_statements WHERE starts_with(statement, 'WITH c AS (')`;
            return { generic: row.g as number, custom: row.c as number };
          };
          await claims(4);
          // PostgreSQL plans a statement for its parameters 5 times before it weighs the
          // generic plan; from then on, the generic one serves.
          assert.deepEqual(await plans(), { generic: 0, custom: 4 });
          await claims(6);
          assert.deepEqual(await plans(), { generic: 5, custom: 5 });
          // The generic plan, forced for each claim here, reads the claimed rows by TID only.
          const seqReads = async () => {
            await sql`SELECT pg_stat_force_next_flush()`;
            const [row] = await sql`SELECT seq_tup_read::integer AS n FROM pg_stat_user_tables
              WHERE schemaname = ${schema} AND relname = 'jobs'`;
            return row.n as number;
          };
          await sql`SET plan_cache_mode = force_generic_plan`;
          const before = await seqReads();
          await claims(4);
          assert.equal(await seqReads() - before, 0);
          assert.equal(await store.countJobs(q, 'active'), 14 * 50);
        });
      },
    );
  });

  describe('isolation and sharing', () => {
    it(
      'a store on a shared sql instance leaves the pool open on disconnect',
      { timeout: 30_000 },
      async () => {
        const sql = postgres(server.url, { max: 2, onnotice: () => {} });
        const store = new PgStore({ sql, schema: SHARED });
        await store.connect();
        const q = uniqueQueue();
        const id = await store.saveJob(q, job(q));
        await store.disconnect();
        const [row] = await sql.unsafe(
          `SELECT state FROM "${SHARED}".jobs WHERE queue = $1 AND id = $2`,
          [q, id],
        );
        assert.equal(row.state, 'waiting');
        await sql.end();
        await ran();
      },
    );

    it('two schemas in one database are isolated', { timeout: 30_000 }, async () => {
      const a = await open({ schema: freshSchema() });
      const b = await open({ schema: freshSchema() });
      const q = uniqueQueue();
      const eventsB = recorder(b, q);
      await b.subscriptionsReady();
      await a.saveJob(q, job(q, 'in-a'));
      const marker = await b.saveJob(q, job(q, 'in-b'));
      await eventually(() => eventsB.some((e) => e.jobId === marker));
      assert.equal(eventsB.length, 1);
      assert.equal(await b.countJobs(q, 'waiting'), 1);
      assert.equal((await b.fetchNextJob(q, 'w', 1000))?.name, 'in-b');
      assert.equal((await a.fetchNextJob(q, 'w', 1000))?.name, 'in-a');
      await ran();
    });

    it('a schema name with quotes works', { timeout: 30_000 }, async () => {
      const store = await open({ schema: freshSchema(`"it's"`) });
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal((await store.fetchNextJob(q, 'w', 1000))?.id, id);
      await ran();
    });

    it('lock expiry follows the database clock', { timeout: 30_000 }, async () => {
      const store = await open();
      const q = uniqueQueue();
      await store.saveJob(q, job(q));
      const [{ now }] = await admin.unsafe(`SELECT "${SHARED}".now_ms() AS now`);
      const got = await store.fetchNextJob(q, 'w', 60_000);
      const [{ after }] = await admin.unsafe(`SELECT "${SHARED}".now_ms() AS after`);
      assert.ok(
        got!.lockUntil! >= Number(now) + 60_000 && got!.lockUntil! <= Number(after) + 60_000,
      );
      await ran();
    });
  });
});

/**
 * A TCP proxy to the test server, to break connections on purpose. `reset(chunk)` true resets
 * the connection that sent that chunk; `hang()` true leaves a new connection unanswered.
 */
async function tcpProxy(
  rules: { reset?: (chunk: string) => boolean; hang?: () => boolean },
): Promise<{
  address: { host: string; port: number };
  dropAll: () => void;
  close: (users: PgStore[]) => Promise<void>;
}> {
  const target = url();
  const sockets = new Set<Socket>();
  const track = (pair: Socket[]) => {
    for (const sock of pair) {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => {
        sockets.delete(sock);
        for (const other of pair) other.destroy();
      });
    }
  };
  const proxy = createServer((client) => {
    if (rules.hang?.()) return track([client]);
    const upstream = connectSocket(target.port, target.host);
    track([client, upstream]);
    client.on('data', (d: Uint8Array) => {
      if (rules.reset?.(new TextDecoder().decode(d))) client.resetAndDestroy();
      else upstream.write(d);
    });
    upstream.on('data', (d: Uint8Array) => client.write(d));
  });
  const port = await new Promise<number>((resolve) =>
    proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as { port: number }).port))
  );
  const dropAll = () => {
    for (const sock of [...sockets]) sock.destroy();
  };
  return {
    address: { host: '127.0.0.1', port },
    dropAll,
    // The stores using it disconnect first, so that they do not reconnect to a closing proxy.
    close: async (users) => {
      await Promise.all(users.map((s) => s.disconnect()));
      dropAll();
      await new Promise((r) => proxy.close(r));
    },
  };
}

function url(): { host: string; port: number; user: string; database: string } {
  const u = new URL(server.url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    database: u.pathname.slice(1),
  };
}
