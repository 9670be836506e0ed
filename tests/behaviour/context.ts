/**
 * What every behaviour topic file receives: a way to declare a case that opens a fresh store,
 * hands it Queue/Worker/QueueEvents/FlowProducer factories bound to a unique queue, and closes
 * everything afterwards.
 *
 * @module
 */
import { it } from 'node:test';
import type { StoreInterface } from '@conveyor/shared';
import {
  FlowProducer,
  type Processor,
  Queue,
  QueueEvents,
  type QueueOptions,
  Worker,
  type WorkerOptions,
} from '@conveyor/core';
import type { StoreHarness } from '../harness.ts';
import { uniqueQueue, waitFor } from '../helpers.ts';

/** A case's toolbox. Everything it creates is closed when the case ends. */
export interface Ctx {
  /** The harness (for `openPeer`). */
  harness: StoreHarness;
  /** The open store. */
  store: StoreInterface;
  /** A queue name unique to this case. */
  q: string;
  /** A Queue on `q` (or `name`). */
  queue<D = unknown>(opts?: Partial<QueueOptions>, name?: string): Queue<D>;
  /** A Worker on `q` (or `opts.queueName`); short stalled/poll intervals unless given. */
  // deno-lint-ignore no-explicit-any
  worker<D = any, R = any>(
    processor: Processor<D, R>,
    opts?: Partial<WorkerOptions> & { queueName?: string; batch?: undefined },
  ): Worker<D, R>;
  /** A QueueEvents on `q` (or `name`), optionally on another store (a peer). */
  events(name?: string, store?: StoreInterface): QueueEvents;
  /** A FlowProducer. */
  flows(): FlowProducer;
  /** Registers a cleanup step (run before the store closes, last registered first). */
  defer(fn: () => unknown): void;
}

/** A behaviour case body. */
export type CaseBody = (ctx: Ctx) => Promise<void>;

/** Declares behaviour cases for one harness. */
export interface Suite {
  /** The harness under test. */
  harness: StoreHarness;
  /** Declares a case. */
  test(name: string, body: CaseBody): void;
  /** Declares a skipped case; `reason` says why. */
  skip(name: string, reason: string): void;
}

/** Builds the {@linkcode Suite} of a harness; `ran` is called after each passing case. */
export function makeSuite(harness: StoreHarness, ran: () => void): Suite {
  return {
    harness,
    test(name, body) {
      it(name, { timeout: 30_000 }, async () => {
        const store = await harness.open();
        const cleanups: Array<() => unknown> = [];
        const q = uniqueQueue('b');
        const ctx: Ctx = {
          harness,
          store,
          q,
          queue: (opts = {}, name = q) => new Queue(name, { store, ...opts }),
          worker: <D, R>(
            processor: Processor<D, R>,
            opts: Partial<WorkerOptions> & { queueName?: string; batch?: undefined } = {},
          ) => {
            const { queueName = q, ...rest } = opts;
            const w = new Worker<D, R>(queueName, processor, {
              store,
              stalledInterval: 5000,
              pollInterval: 5000,
              ...rest,
            });
            w.on('error', () => {});
            cleanups.push(() => w.close(0));
            return w;
          },
          events: (name = q, s = store) => {
            const e = new QueueEvents(name, { store: s });
            cleanups.push(() => e.close());
            return e;
          },
          flows: () => new FlowProducer({ store }),
          defer: (fn) => cleanups.push(fn),
        };
        try {
          await body(ctx);
        } finally {
          for (const fn of cleanups.reverse()) await fn();
          await store.disconnect();
        }
        ran();
      });
    },
    skip(name, reason) {
      it.skip(`${name} (skipped: ${reason})`, () => {});
    },
  };
}

/** Anything with `on`/`off` (Worker, QueueEvents). */
// deno-lint-ignore no-explicit-any
export type Listenable = { on(e: any, l: any): unknown; off(e: any, l: any): unknown };

/** Resolves with the arguments of the next `event` that `match` accepts (5 s timeout). */
// deno-lint-ignore no-explicit-any
export function next<A extends unknown[] = any[]>(
  emitter: Listenable,
  event: string,
  match: (...args: A) => boolean = () => true,
  timeout = 5000,
): Promise<A> {
  return waitFor<A>(
    (listener) => {
      const l = (...args: A): void => listener(args);
      emitter.on(event, l);
      return () => emitter.off(event, l);
    },
    (args) => match(...args),
    { timeout, message: `event ${event}` },
  );
}

/** Collects every emission of `event` into an array. */
// deno-lint-ignore no-explicit-any
export function collect<A extends unknown[] = any[]>(
  emitter: Listenable,
  event: string,
): A[] {
  const seen: A[] = [];
  emitter.on(event, (...args: A) => seen.push(args));
  return seen;
}

/** A gate a processor can wait on, opened by the test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Wraps a store so the test can count calls of its methods. */
export function spy(store: StoreInterface): { store: StoreInterface; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

/** A view of `store` whose `method` is the one `make` builds from the store's own (bound). */
export function replacing<K extends keyof StoreInterface>(
  store: StoreInterface,
  method: K,
  make: (real: StoreInterface[K]) => StoreInterface[K],
): StoreInterface {
  const replaced = make((store[method] as (...args: unknown[]) => unknown).bind(store) as never);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === method) return replaced;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
