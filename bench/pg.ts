/**
 * PostgreSQL benchmark, every figure from one run against one server (default
 * `postgres://postgres@127.0.0.1:5432/test`, or `CONVEYOR_BENCH_PG_URL` / `CONVEYOR_PG_URL`):
 *
 * 1. raw SQL through postgres.js: bulk insert (1,000-row INSERTs), drain with a `SKIP LOCKED`
 *    claim of 50 then one complete statement, add→start latency (INSERT + NOTIFY, claim on
 *    the notification);
 * 2. our store: `saveBulk` (1,000 per call), a store-level drain loop (`fetchNextJobs(50)` +
 *    `completeJobs`), and through the engine when `@conveyor/core` loads: `Queue.addBulk`,
 *    `Worker` with `concurrency: 50` (its default `prefetch: 'auto'`), then with `prefetch: 0`,
 *    `prefetch: 50` and `prefetch: 500` (as graphile-worker's two rows: local queues of 50 and
 *    500), add→start p50/p99 at light load;
 * 3. two worker processes draining one queue.
 *
 * Prints jobs/s and the ratios to raw SQL (targets: drain ≥ 0.8×, addBulk ≥ 0.5×,
 * add→start p50 ≤ 1.5 ms and p99 ≤ 5 ms).
 *
 *   npx -y deno@2 run -A bench/pg.ts
 *   npx -y node@24 bench/pg.ts
 *   npx -y bun@1 bench/pg.ts
 *   BENCH_PEERS=0 npx -y deno@2 run -A bench/pg.ts   # without pg-boss and graphile-worker
 *
 * @module
 */
import { spawn } from 'node:child_process';
import process from 'node:process';
import postgres from 'postgres';
import { newJob } from '@conveyor/shared';
import { PgStore } from '@conveyor/store-pg';
import { drainLoop, loadEngine } from './pg/engine.ts';
import {
  dropRaw,
  type LatencySampler,
  rawBulkInsert,
  rawDrain,
  rawLatency,
  setupRaw,
} from './pg/raw.ts';
import { graphileWorkerWith, type PeerResult, pgBoss } from './pg/peers.ts';

const N = Number(process.env.BENCH_N ?? 20_000);
const CHUNK = 1_000;
const IN_FLIGHT = 50;
const SAMPLES = 300;
const ROUNDS = 3;
/**
 * Rounds run first and not recorded: the first round of a run was the slowest for raw SQL and
 * ours alike (connections opening, caches filling, the machine speeding up).
 */
const WARMUP = 1;
const URL_ = process.env.CONVEYOR_BENCH_PG_URL ?? process.env.CONVEYOR_PG_URL ??
  'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = 'conveyor_bench';

const runtime = process.versions.deno
  ? `deno ${process.versions.deno}`
  : process.versions.bun
  ? `bun ${process.versions.bun}`
  : `node ${process.version}`;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const rate = (n: number, ms: number): number => n / (ms / 1000);
const line = (label: string, value: string) => console.log(`${label.padEnd(62)} ${value}`);
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ratio = (ours: number, raw: number, target: number): string =>
  `${(ours / raw).toFixed(2)}× raw (target ≥ ${target}×) ${ours / raw >= target ? 'OK' : 'BELOW'}`;

const sql = postgres(URL_, { max: 10, onnotice: () => {} });
const listener = postgres(URL_, { max: 1, onnotice: () => {} });
const [{ server_version: version }] = await sql`SHOW server_version`;
const [{ fsync }] = await sql`SHOW fsync`;
console.log(
  `PostgreSQL ${version} (fsync ${fsync}), ${runtime}, ${N} no-op jobs, ${IN_FLIGHT} in flight`,
);

await sql.unsafe(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
const store = new PgStore({ connection: URL_, schema: SCHEMA });
await store.connect();
const engine = await loadEngine();
const queue = (tag: string) => `bench-${tag}-${crypto.randomUUID().slice(0, 6)}`;
const median = (xs: number[]): number => pct(xs, 50);

/** Jobs/s per scenario, one entry per round. */
const runs: Record<string, number[]> = {};
let warmingUp = false;
const record = (name: string, ms: number) => {
  if (!warmingUp) (runs[name] ??= []).push(rate(N, ms));
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function storeFill(q: string): Promise<void> {
  for (let i = 0; i < N; i += CHUNK) {
    await store.saveBulk(
      q,
      Array.from({ length: CHUNK }, (_, k) => newJob(q, 'noop', { i: i + k })),
    );
  }
}

async function storeBulk(q: string): Promise<number> {
  return await timed(() => storeFill(q));
}

/**
 * The engine's drain: the Worker's default `prefetch` ('auto') unless given; fixed ones as
 * graphile-worker's local queue in its rows (50, 500).
 */
async function engineDrain(q: string, prefetch?: number): Promise<number> {
  let completed = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  const t = performance.now();
  const worker = new engine!.Worker(q, () => Promise.resolve(null), {
    store,
    concurrency: IN_FLIGHT,
    prefetch,
  });
  worker.on('completed', () => {
    if (++completed === N) allDone();
  });
  await finished;
  const ms = performance.now() - t;
  await worker.close();
  return ms;
}

// Three rounds, alternating raw SQL and ours, so that load changes on this shared machine hit
// both; the medians are compared.
for (let round = -WARMUP; round < ROUNDS; round++) {
  warmingUp = round < 0;
  await setupRaw(sql);
  record('raw bulk', await rawBulkInsert(sql, N, CHUNK));
  record('raw drain', await rawDrain(sql, IN_FLIGHT));
  await dropRaw(sql);
  let q = queue('store');
  record('store bulk', await storeBulk(q));
  record(
    'store drain',
    await timed(() =>
      drainLoop(store, q, IN_FLIGHT, async () => (await store.countJobs(q, 'waiting')) === 0)
    ),
  );
  if (engine) {
    // Like the raw table (new for every run): the engine starts on an empty table too.
    await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
    q = queue('engine');
    const Q = new engine.Queue(q, { store });
    record(
      'engine bulk',
      await timed(async () => {
        for (let i = 0; i < N; i += CHUNK) {
          await Q.addBulk(
            Array.from({ length: CHUNK }, (_, k) => ({ name: 'noop', data: { i: i + k } })),
          );
        }
      }),
    );
    record('engine drain', await engineDrain(q));
    await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
    q = queue('engine');
    await storeFill(q);
    record('engine drain prefetch 0', await engineDrain(q, 0));
    await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
    q = queue('engine');
    await storeFill(q);
    record('engine drain prefetch', await engineDrain(q, IN_FLIGHT));
    await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
    q = queue('engine');
    await storeFill(q);
    record('engine drain prefetch 500', await engineDrain(q, 500));
  }
  // The next round's store run starts on an empty table as well.
  await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
}

const rawBulk = median(runs['raw bulk']);
const rawDrainRate = median(runs['raw drain']);
const show = (label: string, key: string, base: number, target: number) =>
  line(
    label,
    `${fmt(median(runs[key]))} jobs/s  ${ratio(median(runs[key]), base, target)}  [${
      runs[key].map(fmt).join(', ')
    }]`,
  );
console.log(`medians of ${ROUNDS} rounds, after ${WARMUP} not recorded [each round]:`);
show('raw SQL: bulk insert (1,000-row INSERTs)', 'raw bulk', rawBulk, 1);
show('raw SQL: SKIP LOCKED claim of 50, then complete', 'raw drain', rawDrainRate, 1);
show('store.saveBulk (1,000 per call)', 'store bulk', rawBulk, 0.5);
show('store loop: fetchNextJobs(50) + completeJobs', 'store drain', rawDrainRate, 0.8);
if (engine) {
  show('engine: Queue.addBulk (1,000 per call)', 'engine bulk', rawBulk, 0.5);
  show(
    "engine: Worker concurrency 50 (default: 'auto' prefetch), no-op",
    'engine drain',
    rawDrainRate,
    0.8,
  );
  show(
    'engine: Worker concurrency 50, prefetch 0, no-op processor',
    'engine drain prefetch 0',
    rawDrainRate,
    0.8,
  );
  show(
    'engine: Worker concurrency 50, prefetch 50, no-op processor',
    'engine drain prefetch',
    rawDrainRate,
    0.8,
  );
  show(
    'engine: Worker concurrency 50, prefetch 500, no-op processor',
    'engine drain prefetch 500',
    rawDrainRate,
    0.8,
  );
} else {
  console.log('engine (@conveyor/core) not available: engine figures skipped');
}

// ── peers (root devDependencies; skipped when missing) ──
// BENCH_PEERS=0 skips the peers (a quicker run when only our figures matter).
const peers = [pgBoss, graphileWorkerWith(50, 10), graphileWorkerWith(500, 25)];
for (const peer of process.env.BENCH_PEERS === '0' ? [] : peers) {
  let r: PeerResult | null = null;
  try {
    // A peer that stalls (it happened once) must not hang the whole benchmark.
    let timer: ReturnType<typeof setTimeout> | undefined;
    r = await Promise.race([
      peer(URL_, N, CHUNK, SAMPLES),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no result within 180 s')), 180_000);
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (e) {
    console.log(`${peer.name}: failed (${(e as Error).message}), skipped`);
    continue;
  }
  if (!r) {
    console.log(`${peer.name}: not installed, skipped`);
    continue;
  }
  line(`${r.label}: bulk enqueue`, `${fmt(r.bulk)} jobs/s  ${(r.bulk / rawBulk).toFixed(2)}× raw`);
  line(`${r.label}: drain`, `${fmt(r.drain)} jobs/s  ${(r.drain / rawDrainRate).toFixed(2)}× raw`);
  line(
    `${r.label}: add→start`,
    `p50 ${pct(r.latency, 50).toFixed(2)} ms, p99 ${pct(r.latency, 99).toFixed(2)} ms`,
  );
}
await sql.unsafe(
  'DROP SCHEMA IF EXISTS conveyor_bench_pgboss CASCADE; DROP SCHEMA IF EXISTS conveyor_bench_graphile CASCADE',
);

// ── add→start latency at light load ──
// Raw SQL, the store-level loop and the engine take turns, one sample each, so that load on
// this shared machine hits all three alike.
await setupRaw(sql);
const samplers: Array<[string, LatencySampler]> = [['raw', await rawLatency(sql, listener)]];
{
  const lq = queue('store-latency');
  let wake: (() => void) | null = null;
  store.subscribe(lq, (e) => e.type === 'waiting' && wake?.(), ['waiting']);
  await store.subscriptionsReady();
  samplers.push(['store', {
    async sample(i) {
      let t0 = 0;
      let latency = 0;
      const claimed = new Promise<void>((resolve) => {
        wake = async () => {
          const jobs = await store.fetchNextJobs(lq, 'lat', 30_000, IN_FLIGHT);
          if (jobs.length === 0) return;
          latency = performance.now() - t0;
          await store.completeJobs(
            lq,
            jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null })),
          );
          resolve();
        };
      });
      t0 = performance.now();
      await store.saveJob(lq, newJob(lq, 'noop', { i }));
      await claimed;
      return latency;
    },
    close: () => Promise.resolve(store.unsubscribe(lq)),
  }]);
}
if (engine) {
  const eq = queue('latency');
  const LQ = new engine.Queue(eq, { store });
  let started: (() => void) | null = null;
  const lw = new engine.Worker(eq, () => {
    started?.();
    return Promise.resolve(null);
  }, { store, concurrency: IN_FLIGHT });
  await store.subscriptionsReady();
  let finished: (() => void) | null = null;
  lw.on('completed', () => finished?.());
  samplers.push(['engine', {
    // Like the raw and store samplers, a sample ends when its job is completed, so that the
    // next one starts on an idle system.
    async sample(i) {
      const begun = new Promise<void>((r) => (started = r));
      const done = new Promise<void>((r) => (finished = r));
      const t0 = performance.now();
      await LQ.add('noop', { i });
      await begun;
      const latency = performance.now() - t0;
      await done;
      return latency;
    },
    close: () => lw.close(),
  }]);
}
const lat: Record<string, number[]> = {};
for (let i = 0; i < SAMPLES; i++) {
  for (let k = 0; k < samplers.length; k++) {
    const [name, sampler] = samplers[(i + k) % samplers.length];
    (lat[name] ??= []).push(await sampler.sample(i));
  }
}
for (const [, sampler] of samplers) await sampler.close();
await dropRaw(sql);
const p50 = (name: string) => pct(lat[name], 50);
const p99 = (name: string) => pct(lat[name], 99);
const vsRaw = (name: string) =>
  `(${(p50(name) / p50('raw')).toFixed(2)}× / ${(p99(name) / p99('raw')).toFixed(2)}× raw)`;
console.log(`add→start at light load, ${SAMPLES} samples each, taken in turns:`);
line(
  'raw SQL: add→start (INSERT+NOTIFY, claim on notify)',
  `p50 ${p50('raw').toFixed(2)} ms, p99 ${p99('raw').toFixed(2)} ms`,
);
line(
  'store: add→start (saveJob, claim on the waiting event)',
  `p50 ${p50('store').toFixed(2)} ms, p99 ${p99('store').toFixed(2)} ms ${vsRaw('store')}`,
);
if (engine) {
  line(
    'engine: add→start at light load',
    `p50 ${p50('engine').toFixed(2)} ms (target ≤ 1.5) ${
      p50('engine') <= 1.5 ? 'OK' : 'ABOVE'
    }, p99 ${p99('engine').toFixed(2)} ms (target ≤ 5) ${p99('engine') <= 5 ? 'OK' : 'ABOVE'} ${
      vsRaw('engine')
    }`,
  );
}

// ── two worker processes ──
for (const procs of [1, 2]) {
  // Like the in-process drains, each starts on an empty table: on a table that still held the
  // jobs of the runs before, the second of two drains in a row was 17-39% slower.
  await sql.unsafe(`TRUNCATE ${SCHEMA}.jobs`);
  const q = queue(`procs${procs}`);
  await store.pauseJobName(q, '__all__');
  for (let i = 0; i < N; i += CHUNK) {
    await store.saveBulk(
      q,
      Array.from({ length: CHUNK }, (_, k) => newJob(q, 'noop', { i: i + k })),
    );
  }
  const mode = engine ? 'engine' : 'store';
  const script = new URL('./pg/child.ts', import.meta.url).pathname;
  const args = process.versions.deno ? ['run', '-A', script] : [script];
  const children = Array.from({ length: procs }, () =>
    spawn(process.execPath, args, {
      env: {
        ...process.env,
        BENCH_PG_URL: URL_,
        BENCH_SCHEMA: SCHEMA,
        BENCH_QUEUE: q,
        BENCH_MODE: mode,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    }));
  // Completions are counted from the children's `c <n>` lines: neither a polling query nor a
  // subscription (which would turn on the `completed` notifications) loads the server.
  let completed = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  await Promise.all(children.map((c) =>
    new Promise<void>((resolve) => {
      let buffered = '';
      c.stdout!.on('data', (d) => {
        const lines = (buffered + String(d)).split('\n');
        buffered = lines.pop()!;
        for (const l of lines) {
          if (l === 'ready') resolve();
          else if (l.startsWith('c ') && (completed += Number(l.slice(2))) >= N) allDone();
        }
      });
    })
  ));
  const t = performance.now();
  await store.resumeJobName(q, '__all__');
  await finished;
  const r = rate(N, performance.now() - t);
  for (const c of children) c.kill('SIGTERM'); // every job is done: the children close and exit
  await Promise.all(
    children.map((c) => new Promise((res) => c.exitCode !== null ? res(0) : c.on('exit', res))),
  );
  line(
    `${procs} worker process${procs > 1 ? 'es' : ''} (${
      mode === 'engine' ? 'engine Worker, concurrency 50' : 'store loop, batch 50'
    } each)`,
    `${fmt(r)} jobs/s  ${(r / rawDrainRate).toFixed(2)}× raw`,
  );
}

await store.disconnect();
await sql.unsafe(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
await listener.end();
await sql.end();
process.exit(0);
