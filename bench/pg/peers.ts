/**
 * Peers of the PostgreSQL benchmark, on the same server and workload: pg-boss 12 (batchSize 50,
 * LISTEN/NOTIFY) and graphile-worker 0.18 (concurrency 50, batched completion, with a local queue
 * of 50 and with its documented fastest settings: a local queue of 500 and a pool of 25). Each is
 * skipped when its package is not installed (both are root devDependencies).
 *
 * @module
 */

/** One peer's figures. */
export interface PeerResult {
  /** The peer and its settings. */
  label: string;
  /** Bulk enqueue, jobs/s. */
  bulk: number;
  /** Drain, jobs/s. */
  drain: number;
  /** add→start latencies in ms. */
  latency: number[];
}

const rate = (n: number, ms: number): number => n / (ms / 1000);

// deno-lint-ignore no-explicit-any
async function load(name: string): Promise<any | null> {
  try {
    return await import(name);
  } catch {
    return null;
  }
}

/** pg-boss: `insert` in chunks, `work` with batchSize 50, `send` for latency. */
export async function pgBoss(
  url: string,
  n: number,
  chunk: number,
  samples: number,
): Promise<PeerResult | null> {
  const mod = await load('pg-boss');
  if (!mod) return null;
  const PgBoss = mod.PgBoss ?? mod.default;
  const boss = new PgBoss({
    connectionString: url,
    schema: 'conveyor_bench_pgboss',
    supervise: false,
    schedule: false,
    // Without it pg-boss 12 only polls, even for queues created with notify: true.
    useListenNotify: true,
  });
  boss.on('error', () => {});
  await boss.start();
  const name = `bench_${crypto.randomUUID().slice(0, 6)}`;
  await boss.createQueue(name, { notify: true });
  let t = performance.now();
  for (let i = 0; i < n; i += chunk) {
    await boss.insert(name, Array.from({ length: chunk }, (_, k) => ({ data: { i: i + k } })));
  }
  const bulk = rate(n, performance.now() - t);
  let count = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  t = performance.now();
  await boss.work(
    name,
    { batchSize: 50, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
    // deno-lint-ignore require-await
    async (jobs: unknown[]) => {
      count += jobs.length;
      if (count >= n) done();
    },
  );
  await finished;
  const drain = rate(n, performance.now() - t);
  await boss.offWork(name);
  const lname = `${name}_lat`;
  await boss.createQueue(lname, { notify: true });
  let started: (() => void) | null = null;
  // deno-lint-ignore require-await
  await boss.work(lname, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async () => {
    started?.();
  });
  const latency: number[] = [];
  for (let i = 0; i < samples; i++) {
    const begun = new Promise<void>((r) => (started = r));
    const t0 = performance.now();
    await boss.send(lname, { i });
    await begun;
    latency.push(performance.now() - t0);
  }
  await boss.offWork(lname);
  await boss.stop({ graceful: false, wait: true });
  return { label: 'pg-boss 12 (batchSize 50, LISTEN/NOTIFY)', bulk, drain, latency };
}

/**
 * graphile-worker: `addJobs` in chunks, `run` with concurrency 50, a local queue of `localQueue`
 * jobs and a pool of `pool` connections, `addJob` for latency.
 */
async function graphileWorker(
  url: string,
  n: number,
  chunk: number,
  samples: number,
  localQueue: number,
  pool: number,
): Promise<PeerResult | null> {
  const gw = await load('graphile-worker');
  if (!gw) return null;
  const schema = 'conveyor_bench_graphile';
  const utils = await gw.makeWorkerUtils({ connectionString: url, schema });
  await utils.migrate();
  const id = `noop_${crypto.randomUUID().slice(0, 6)}`;
  let t = performance.now();
  for (let i = 0; i < n; i += chunk) {
    await utils.addJobs(
      Array.from({ length: chunk }, (_, k) => ({ identifier: id, payload: { i: i + k } })),
    );
  }
  const bulk = rate(n, performance.now() - t);
  let count = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  let started: (() => void) | null = null;
  t = performance.now();
  const runner = await gw.run({
    connectionString: url,
    schema,
    concurrency: 50,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new gw.Logger(() => () => {}),
    preset: {
      worker: {
        localQueue: { size: localQueue },
        maxPoolSize: pool,
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
    taskList: {
      // deno-lint-ignore require-await
      [id]: async () => {
        if (++count === n) done();
        started?.();
      },
    },
  });
  await finished;
  const drain = rate(n, performance.now() - t);
  const latency: number[] = [];
  for (let i = 0; i < samples; i++) {
    const begun = new Promise<void>((r) => (started = r));
    const t0 = performance.now();
    await utils.addJob(id, { i });
    await begun;
    latency.push(performance.now() - t0);
  }
  await runner.stop();
  await utils.release();
  return {
    label: `graphile-worker 0.18 (concurrency 50, local queue ${localQueue}, pool ${pool})`,
    bulk,
    drain,
    latency,
  };
}

/**
 * graphile-worker with a local queue of `localQueue` jobs and a pool of `pool` connections: 50
 * and 10, as many jobs as the other rows have in flight, or 500 and 25, its documented fastest
 * settings (its "Performance" page). Completions and failures are batched in both.
 */
export function graphileWorkerWith(
  localQueue: number,
  pool: number,
): (url: string, n: number, chunk: number, samples: number) => Promise<PeerResult | null> {
  const peer = (url: string, n: number, chunk: number, samples: number) =>
    graphileWorker(url, n, chunk, samples, localQueue, pool);
  return Object.defineProperty(peer, 'name', {
    value: `graphile-worker (local queue ${localQueue})`,
  });
}
