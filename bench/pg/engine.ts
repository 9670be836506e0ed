/**
 * The engine (`@conveyor/core`) when it is available, and the store-level loop used otherwise.
 *
 * @module
 */
import type { StoreInterface } from '@conveyor/shared';

/** The part of `@conveyor/core` the benchmark uses. */
export interface Engine {
  /** `Queue` from `@conveyor/core`. */
  Queue: new (name: string, opts: { store: StoreInterface }) => {
    add(name: string, data: unknown): Promise<unknown>;
    addBulk(jobs: Array<{ name: string; data: unknown }>): Promise<unknown[]>;
  };
  /** `Worker` from `@conveyor/core`. */
  Worker: new (
    name: string,
    processor: (job: unknown) => Promise<unknown>,
    opts: { store: StoreInterface; concurrency: number; prefetch?: number | 'auto' },
  ) => {
    on(event: string, fn: (...args: unknown[]) => void): unknown;
    close(): Promise<void>;
  };
}

/** Imports `@conveyor/core`, or returns null when it does not load. */
export async function loadEngine(): Promise<Engine | null> {
  try {
    const mod = await import('@conveyor/core') as unknown as Partial<Engine>;
    return mod.Queue && mod.Worker ? mod as Engine : null;
  } catch {
    return null;
  }
}

/**
 * Store-level drain: claim `batch` with `fetchNextJobs`, complete them all, until `stop()`;
 * `onCompleted` hears how many each batch completed.
 */
export async function drainLoop(
  store: StoreInterface,
  queue: string,
  batch: number,
  stop: () => Promise<boolean>,
  onCompleted: (n: number) => void = () => {},
): Promise<void> {
  for (;;) {
    const jobs = await store.fetchNextJobs(queue, 'bench', 30_000, batch);
    if (jobs.length === 0) {
      if (await stop()) return;
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    const ok = await store.completeJobs(
      queue,
      jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null })),
    );
    onCompleted(ok.filter(Boolean).length);
  }
}
