/**
 * The peer: bunqueue (npm, embedded SQLite mode, Bun only), measured with the same workload as
 * `bench/sqlite.ts`: `addBulk` in chunks, then a drain of no-op jobs with 50 in flight.
 *
 * bunqueue is loaded through a computed specifier, so Deno's type check never resolves it; the
 * few parts used are declared here.
 *
 * @module
 */
import process from 'node:process';

interface BunqueueClient {
  Queue: new (name: string, opts: { embedded: true; dataPath: string }) => {
    addBulk(jobs: Array<{ name: string; data: unknown }>): Promise<unknown>;
    close(): Promise<void>;
  };
  Worker: new (
    name: string,
    processor: () => Promise<unknown>,
    opts: { embedded: true; concurrency: number },
  ) => { on(event: 'completed', f: () => void): void; close(): Promise<void> };
}

/** Figures of one bunqueue run, in jobs/s. */
export interface PeerResult {
  /** `Queue.addBulk` rate. */
  addBulk: number;
  /** Drain rate of no-op jobs with `inFlight` concurrency. */
  drain: number;
}

/**
 * Runs bunqueue on `dataPath`; returns null when bunqueue is not installed or not on Bun.
 *
 * @example
 * ```ts
 * import { runBunqueue } from './bunqueue.ts';
 * const r = await runBunqueue('/tmp/bq.db', 20_000, 50, 1_000);
 * if (r) console.log(r.drain);
 * ```
 */
export async function runBunqueue(
  dataPath: string,
  jobs: number,
  inFlight: number,
  chunk: number,
): Promise<PeerResult | null> {
  if (!('Bun' in globalThis)) return null;
  let client: BunqueueClient;
  try {
    process.env.BUNQUEUE_DATA_PATH = dataPath;
    const specifier = ['bunqueue', 'client'].join('/');
    client = await import(specifier) as BunqueueClient;
  } catch (error) {
    console.log(`bunqueue: not available (${(error as Error).message})`);
    return null;
  }
  const queue = new client.Queue('bench', { embedded: true, dataPath });
  let t = performance.now();
  for (let i = 0; i < jobs; i += chunk) {
    await queue.addBulk(
      Array.from({ length: chunk }, (_, k) => ({ name: 'noop', data: { i: i + k } })),
    );
  }
  const addBulk = jobs / ((performance.now() - t) / 1000);
  t = performance.now();
  let completed = 0;
  let resolve = () => {};
  const finished = new Promise<void>((r) => resolve = r);
  const worker = new client.Worker('bench', () => Promise.resolve(null), {
    embedded: true,
    concurrency: inFlight,
  });
  worker.on('completed', () => {
    if (++completed === jobs) resolve();
  });
  await finished;
  const drain = jobs / ((performance.now() - t) / 1000);
  await worker.close();
  await queue.close();
  return { addBulk: Math.round(addBulk), drain: Math.round(drain) };
}
