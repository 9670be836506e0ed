/**
 * A whole PostgreSQL outage under load: the server crashes (`pg_ctl stop -m immediate`) while a
 * producer adds jobs (`add` and `addBulk`), two Workers run them and a QueueEvents listens, and
 * starts again 2.5 s later. Every acknowledged add must end completed exactly once, every add
 * must settle (resolve, or reject with the store's typed `StoreError` `UNAVAILABLE`, never hang),
 * no job may stay active, errors must come out as `error` events (never as an unhandled rejection
 * or an uncaught exception), and after the restart each Worker must claim new jobs at once (its LISTEN is back, not just its
 * poll) and the QueueEvents must hear their completions.
 *
 * A job running or completing at the crash may run again once its lock lapses (at-least-once);
 * its completion is still stored once. The summary line gives the counts and the times to resume.
 *
 * A second case checks the typed error call by call: an add in flight whose backend is terminated
 * (`pg_terminate_backend`), then `add`, `addBulk` and `getJob` while the server is down, each
 * reject with a `StoreError` `UNAVAILABLE` naming the call and the queue; after the restart the
 * same queue adds and reads again.
 *
 * It starts its own embedded PostgreSQL (never the one of `CONVEYOR_PG_URL`, which it would
 * have to crash), with `synchronous_commit=on` so that every acknowledged commit survives the
 * crash.
 *
 * ```sh
 * npx -y deno@2 test -A tests/pg-outage.test.ts
 * npx -y node@24 --test tests/pg-outage.test.ts
 * npx -y bun@1 test ./tests/pg-outage.test.ts
 * ```
 *
 * @module
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import process from 'node:process';
import postgres from 'postgres';
import { Queue, QueueEvents, Worker } from '@conveyor/core';
import { PgStore } from '@conveyor/store-pg';
import { StoreError } from '@conveyor/shared';
import { eventually, requireTests, uniqueQueue, waitFor } from './helpers.ts';
import { startEmbeddedPostgres } from './pg-server.ts';

/** How long the server stays down. */
const OUTAGE_MS = 2500;
/** An add that has not settled after this long counts as hung. */
const ADD_TIMEOUT_MS = 8000;
/** The Workers' fallback poll: a job that starts much sooner was announced, not polled. */
const POLL_MS = 10_000;
/** The most a job added once the queue is drained after the restart may wait to start. */
const START_WITHIN_MS = 2000;
/**
 * The most a job added right after the restart may wait to start: the Workers' pools and
 * LISTEN connections reconnect (a LISTEN connection retries at least every 2 s).
 */
const RESUME_WITHIN_MS = 5000;
const LOCK_MS = 2000;

// Each runtime's test runner also fails a test on an unhandled rejection inside it; these
// catch the ones it would not pin on the test (Node: after a test ended) and name them.
const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => void unhandled.push(e));
process.on('uncaughtException', (e) => void unhandled.push(e));

const server = await startEmbeddedPostgres({ settings: { synchronous_commit: 'on' } });
const admin = postgres(server.url, { max: 2, onnotice: () => {} });
const schema = `cv_outage_${crypto.randomUUID().slice(0, 8)}`;
const stores: PgStore[] = [];

after(async () => {
  await Promise.all(stores.map((s) => s.disconnect().catch(() => {})));
  await admin.end({ timeout: 1 }).catch(() => {});
  await server.stop();
});
const { ran } = requireTests('pg-outage');

/**
 * A connected store on the private server; its background errors go to `errors`. A local server
 * connects in milliseconds: a 2 s `connect_timeout` (the store's default is 10 s) bounds how long
 * a pool slot that postgres.js left unable to connect holds its query before the store replaces
 * the pool (seen on Bun after a crash).
 */
async function open(errors: Error[]): Promise<PgStore> {
  const store = new PgStore({
    connection: `${server.url}?connect_timeout=2`,
    schema,
    onError: (e) => void errors.push(e),
  });
  await store.connect();
  stores.push(store);
  return store;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One producer call: the seqs it carried and how it ended. */
interface Attempt {
  seqs: number[];
  startedAt: number;
  settledAt?: number;
  outcome?: 'acked' | 'rejected' | 'hung';
  ids?: string[];
  error?: unknown;
}

/** Settles `p` as an outcome, or as 'hung' after `ms`. */
async function bounded<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | 'hung'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then((value) => ({ value }), (error) => ({ error })),
      new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asserts that `error` is the store's typed connection failure: a `StoreError` with code
 * `UNAVAILABLE` naming `operation` and the queue, the driver's error as its cause.
 */
function assertUnavailable(error: unknown, operation: string, queueName: string): void {
  assert.ok(error instanceof StoreError, `a StoreError, got ${String(error)}`);
  assert.equal(error.code, 'UNAVAILABLE', String(error));
  assert.match(error.message, /^PostgreSQL could not be reached during /);
  assert.ok(error.message.includes(`${operation} (queue "${queueName}")`), error.message);
  assert.ok(error.cause instanceof Error, `the driver's error as cause: ${String(error.cause)}`);
}

describe('pg-outage', () => {
  it('a server crash and restart under load: nothing lost, nothing twice, all resume', {
    timeout: 90_000,
  }, async () => {
    const storeErrors: Error[] = [];
    const producerStore = await open(storeErrors);
    const eventsStore = await open(storeErrors);
    const q = uniqueQueue('outage');
    const queue = new Queue<{ seq: number }, number>(q, { store: producerStore });

    // What the processors saw: per seq, how often it ran and when it first started.
    const runs = new Map<number, number>();
    const started = new Map<number, number>();
    const startedBy = new Map<number, string>();
    const starts = new EventTarget();
    const workerErrors: Error[] = [];
    const workerCompleted = new Map<string, number>();
    const workers: Worker<{ seq: number }, number>[] = [];
    for (const name of ['A', 'B']) {
      const store = await open(storeErrors);
      const worker = new Worker<{ seq: number }, number>(q, async (job) => {
        const seq = job.data.seq;
        runs.set(seq, (runs.get(seq) ?? 0) + 1);
        if (!started.has(seq)) started.set(seq, performance.now());
        startedBy.set(seq, name);
        starts.dispatchEvent(new CustomEvent('start', { detail: seq }));
        // Mostly short jobs; every 25th runs across lock renewals (and maybe the crash).
        await sleep(seq % 25 === 0 ? 1500 : Math.random() * 20);
        return seq;
      }, {
        store,
        name,
        concurrency: 10,
        lockDuration: LOCK_MS,
        stalledInterval: 1000,
        pollInterval: POLL_MS,
      });
      worker.on('error', (e) => void workerErrors.push(e));
      worker.on('completed', (job) => {
        workerCompleted.set(job.id, (workerCompleted.get(job.id) ?? 0) + 1);
      });
      workers.push(worker);
    }

    const events = new QueueEvents(q, { store: eventsStore });
    const heard = new Map<string, number>();
    const heardAt = new Map<string, number>();
    const eventErrors: unknown[] = [];
    events.on('completed', ({ jobId }) => {
      heard.set(jobId, (heard.get(jobId) ?? 0) + 1);
      heardAt.set(jobId, performance.now());
    });
    events.on('error', (e) => void eventErrors.push(e));
    await events.waitUntilReady();

    // The producer: add and addBulk (5 jobs) in turn, each bounded, until told to stop.
    const attempts: Attempt[] = [];
    let seq = 0;
    let producing = true;
    const produce = async () => {
      for (let k = 0; producing; k++) {
        const seqs = k % 2 === 0 ? [seq] : [seq, seq + 1, seq + 2, seq + 3, seq + 4];
        seq += seqs.length;
        const attempt: Attempt = { seqs, startedAt: performance.now() };
        attempts.push(attempt);
        const call = seqs.length === 1
          ? queue.add('one', { seq: seqs[0] }).then((j) => [j.id])
          : queue.addBulk(seqs.map((s) => ({ name: 'bulk', data: { seq: s } })))
            .then((js) => js.map((j) => j.id));
        const out = await bounded(call, ADD_TIMEOUT_MS);
        attempt.settledAt = performance.now();
        if (out === 'hung') attempt.outcome = 'hung';
        else if ('error' in out) {
          attempt.outcome = 'rejected';
          attempt.error = out.error;
          // The server is down: no need to spin on refused connections.
          await sleep(50);
        } else {
          attempt.outcome = 'acked';
          attempt.ids = out.value;
        }
        await sleep(10);
      }
    };
    const producer = produce();
    const acked = () => attempts.filter((a) => a.outcome === 'acked');

    await eventually(() => heard.size >= 100, {
      timeout: 20_000,
      message: '100 completions heard before the crash',
    });

    // ── The crash. ──
    const crashAt = performance.now();
    await server.crash();
    await eventually(
      () => attempts.some((a) => a.outcome === 'rejected' && a.startedAt > crashAt),
      { timeout: 5000, message: 'an add refused during the outage' },
    );
    await sleep(Math.max(0, OUTAGE_MS - (performance.now() - crashAt)));
    await server.start();
    const restartAt = performance.now();

    // Keep producing after the restart.
    await eventually(() => acked().filter((a) => a.startedAt > restartAt).length >= 20, {
      timeout: 20_000,
      message: '20 adds acknowledged after the restart',
    });
    producing = false;
    await producer;

    // Every job of the queue ends completed: stalled ones come back after their lock expires.
    const ackedSeqs = new Map<number, string>();
    for (const a of acked()) a.seqs.forEach((s, i) => ackedSeqs.set(s, a.ids![i]));
    const rowsOf = () =>
      admin.unsafe(
        `SELECT id, state, (data::jsonb->>'seq')::int AS seq, failed_reason, stalled_count,
           attempts_started FROM "${schema}".jobs WHERE queue = $1`,
        [q],
      );
    let unfinished = '';
    await eventually(async () => {
      const rows = await rowsOf();
      const ids = new Set(rows.map((r) => r.id as string));
      const missing = [...ackedSeqs].filter(([, id]) => !ids.has(id)).map(([s]) => s);
      const open = rows.filter((r) => r.state !== 'completed');
      unfinished = `missing seqs [${missing}], not completed ${
        JSON.stringify(
          open.map((r) => [r.seq, r.state, r.failed_reason, r.stalled_count, r.attempts_started]),
        )
      }`;
      return missing.length === 0 && open.length === 0;
    }, { timeout: 30_000, interval: 100, message: 'every job of the queue completed' })
      .catch((e) => {
        throw new Error(`${e.message}: ${unfinished}`);
      });

    // ── After the restart, each worker claims a new job at once, announced by a NOTIFY
    // (its LISTEN is back): well before its poll would find it. Each worker's first probe must
    // start well before its poll too, but is not timed: a LISTEN connection retries every 2 s at
    // the most, and once (CI, Node, PostgreSQL 18) it was not back yet when the queue had drained
    // (the first probe started after 2,044 ms, the nine others in 4–10 ms). ──
    const latencies: number[] = [];
    for (const [i, worker] of workers.entries()) {
      const other = workers[1 - i];
      await other.pause();
      worker.resume();
      for (let p = 0; p < 5; p++) {
        const s = seq++;
        const startedOnce = waitFor<number>(
          (l) => {
            const h = (e: Event) => l((e as CustomEvent<number>).detail);
            starts.addEventListener('start', h);
            return () => starts.removeEventListener('start', h);
          },
          (v) => v === s,
          { timeout: POLL_MS / 2, message: `job ${s} to start on worker ${worker.id}` },
        );
        const addAt = performance.now();
        const job = await queue.add('probe', { seq: s });
        ackedSeqs.set(s, job.id);
        await startedOnce;
        if (p > 0) latencies.push(started.get(s)! - addAt);
        assert.equal(startedBy.get(s), worker.id);
        await eventually(() => heard.has(job.id), {
          timeout: 5000,
          message: `QueueEvents hearing the completion of probe ${s}`,
        });
      }
      other.resume();
    }

    await Promise.all(workers.map((w) => w.close()));
    await events.close();

    // ── Assertions. ──
    assert.deepEqual(unhandled, [], 'no unhandled rejection or uncaught exception');
    const hung = attempts.filter((a) => a.outcome === 'hung');
    assert.equal(hung.length, 0, 'every add settled within the bound');
    const rejected = attempts.filter((a) => a.outcome === 'rejected');
    assert.ok(rejected.length > 0, 'some adds were refused during the outage');
    // A refused add says why in one typed error: the server could not be reached.
    for (const a of rejected) {
      assertUnavailable(a.error, a.seqs.length === 1 ? 'saveJob' : 'saveBulk', q);
    }
    assert.ok(workerErrors.length > 0, 'the workers reported the outage as error events');
    assert.ok(storeErrors.length > 0, 'the stores reported the dropped LISTEN connections');
    assert.deepEqual(eventErrors, []);

    // Every acknowledged add exists once and is completed; any other job comes from an add that
    // was refused (its commit may have happened before the connection died).
    const finalRows = await rowsOf();
    assert.ok(finalRows.every((r) => r.state === 'completed'));
    for (const [s, id] of ackedSeqs) {
      const found = finalRows.filter((r) => r.seq === s);
      assert.equal(found.length, 1, `seq ${s}: one job`);
      assert.equal(found[0].id, id, `seq ${s}: the acknowledged id`);
      assert.equal(found[0].state, 'completed', `seq ${s}: completed`);
    }
    const refusedSeqs = new Set(rejected.flatMap((a) => a.seqs));
    for (const r of finalRows) {
      assert.ok(ackedSeqs.has(r.seq) || refusedSeqs.has(r.seq), `job of seq ${r.seq} was added`);
    }
    const ids = new Set(finalRows.map((r) => r.id as string));
    // A job's completion is stored once: no worker reports it twice, QueueEvents hears it once.
    for (const [id, n] of workerCompleted) {
      assert.ok(ids.has(id));
      assert.equal(n, 1, `job ${id} completed once by the workers`);
    }
    for (const [id, n] of heard) assert.equal(n, 1, `job ${id} heard completed once`);
    const heardAfter = [...heardAt.values()].filter((t) => t > restartAt).length;
    assert.ok(heardAfter > 0, 'QueueEvents heard completions after the restart');
    assert.ok(Math.max(...latencies) < START_WITHIN_MS, `add→start when drained: ${latencies}`);
    // Jobs added after the restart start soon, not after a reconnect delay or a poll.
    const resumed = acked().filter((a) => a.startedAt > restartAt).flatMap((a) =>
      a.seqs.map((s) => started.get(s)! - a.settledAt!)
    );
    assert.ok(
      Math.max(...resumed) < RESUME_WITHIN_MS,
      `add→start of the jobs added after the restart: ${resumed.map((x) => x.toFixed(0))}`,
    );
    const firstAck = Math.min(
      ...acked().map((a) => a.settledAt!).filter((t) => t > restartAt),
    ) - restartAt;

    // The store's background errors are typed too: connection failures of LISTEN (and pool
    // renewals) as StoreError, besides the notice that the LISTEN connection closed.
    const untyped = storeErrors.filter((e) =>
      !(e instanceof StoreError) && !/LISTEN connection closed/.test(e.message)
    );
    assert.deepEqual(untyped.map(String), [], 'untyped store errors');
    const ranTwice = [...runs.values()].filter((n) => n > 1).length;
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `pg-outage: ${acked().length + 10} adds acknowledged, ${rejected.length} refused, ` +
        `${finalRows.length} jobs completed, ${ranTwice} ran more than once; ` +
        `${workerErrors.length} worker errors, ${storeErrors.length} store errors, ${
          storeErrors.filter((e) => (e as { code?: string }).code === 'POOL_RENEWED').length
        } pools replaced; ` +
        `first add acknowledged ${firstAck.toFixed(0)} ms after the restart, add→start of ` +
        `jobs added after it max ${Math.max(...resumed).toFixed(0)} ms, once drained p50 ` +
        `${sorted[sorted.length >> 1].toFixed(1)} ms max ${sorted.at(-1)!.toFixed(1)} ms; ` +
        `${heardAfter} completions heard after the restart`,
    );
    ran();
  });
  it(
    'a terminated backend and a server down: typed UNAVAILABLE errors, then the queue works again',
    {
      timeout: 60_000,
    },
    async () => {
      const storeErrors: Error[] = [];
      const store = await open(storeErrors);
      const q = uniqueQueue('down');
      const queue = new Queue(q, { store });
      const first = await queue.add('before', {});

      // A backend terminated under a call in flight: the add waits on a table lock held
      // elsewhere, and its backend is terminated (pg_terminate_backend, SQLSTATE 57P01).
      const blocker = postgres(server.url, { max: 1, onnotice: () => {} });
      let unlock!: () => void;
      const held = new Promise<void>((r) => (unlock = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holding = blocker.begin(async (tx) => {
        await tx.unsafe(`LOCK TABLE "${schema}".jobs IN ACCESS EXCLUSIVE MODE`);
        locked();
        await held;
      });
      await isLocked;
      const blocked = bounded(queue.add('blocked', {}), ADD_TIMEOUT_MS);
      const [waiter] = await eventually(
        () =>
          admin.unsafe(
            `SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          ).then((rows) => rows.length === 1 ? rows : null),
        { message: 'the add waiting on the lock' },
      );
      await admin.unsafe('SELECT pg_terminate_backend($1)', [waiter.pid]);
      const out = await blocked;
      assert.ok(out !== 'hung' && 'error' in out, 'the add in flight was refused');
      assertUnavailable(out.error, 'saveJob', q);
      unlock();
      await holding;
      await blocker.end();

      // The server down: every call is refused at once with the typed error.
      await server.crash();
      for (
        const [operation, call] of [
          ['saveJob', () => queue.add('down', {})],
          [
            'saveBulk',
            () => queue.addBulk([{ name: 'down', data: {} }, { name: 'down', data: {} }]),
          ],
          ['getJob', () => queue.getJob(first.id)],
        ] as const
      ) {
        const res = await bounded<unknown>(call(), ADD_TIMEOUT_MS);
        assert.ok(
          res !== 'hung' && 'error' in res,
          `${operation} refused while the server is down`,
        );
        assertUnavailable(res.error, operation, q);
      }

      // Back up: the same queue adds and reads again (a call may still meet a connection the
      // crash closed; it is refused with the same typed error).
      await server.start();
      const later = await eventually(async () => {
        const res = await bounded(queue.add('after', {}), ADD_TIMEOUT_MS);
        if (res === 'hung') throw new Error('an add hung after the restart');
        if ('error' in res) {
          assertUnavailable(res.error, 'saveJob', q);
          return null;
        }
        return res.value;
      }, { timeout: 20_000, interval: 50, message: 'an add acknowledged after the restart' });
      assert.equal((await queue.getJob(later.id))?.name, 'after');
      assert.equal((await queue.getJob(first.id))?.name, 'before');
      ran();
    },
  );
});
