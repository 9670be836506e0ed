/**
 * What every conformance topic file receives: a way to declare a case that opens a fresh store
 * from the harness, runs, and closes it, plus small builders shared by the cases.
 *
 * @module
 */
import { it } from 'node:test';
import {
  type ChildFailurePolicy,
  type JobData,
  type JobOptions,
  type NewJob,
  newJob,
  type StoreEvent,
} from '@conveyor/shared';
import type { StoreInterface } from '@conveyor/shared';
import type { StoreHarness } from '../harness.ts';
import { eventually, uniqueQueue } from '../helpers.ts';

/** A conformance case body: gets an open store, which is closed afterwards. */
export type CaseBody = (store: StoreInterface) => Promise<void>;

/** Declares cases for one harness. */
export interface Suite {
  /** The harness under test. */
  harness: StoreHarness;
  /** Declares a case (an `it` that opens and closes a store and counts itself as run). */
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
        try {
          await body(store);
        } finally {
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

export { uniqueQueue };

/** A new job for `queue` (state `waiting`, or `delayed` when `fields.delayUntil` is future). */
export function job(
  queue: string,
  name = 'task',
  data: unknown = {},
  opts: JobOptions = {},
  fields: Partial<NewJob> = {},
): NewJob {
  return newJob(queue, name, data, opts, fields);
}

/** A delayed job due `ms` from now. */
export function delayedJob(
  queue: string,
  ms: number,
  opts: JobOptions = {},
  name = 'task',
): NewJob {
  return newJob(queue, name, {}, opts, { state: 'delayed', delayUntil: Date.now() + ms });
}

/**
 * Saves a flow: parent `parent` (named `p`, in `waiting-children`, with `parentOpts`) and its
 * waiting children `children` (ids, named `c`, with `childOpts`), all in `queue`.
 */
export async function saveFamily(
  store: StoreInterface,
  queue: string,
  parent: string,
  children: string[],
  parentOpts: JobOptions = {},
  childOpts: JobOptions = {},
): Promise<void> {
  await store.saveFlow([
    {
      queueName: queue,
      job: job(queue, 'p', {}, { ...parentOpts, jobId: parent }, {
        state: 'waiting-children',
        pendingChildrenCount: children.length,
      }),
    },
    ...children.map((id) => ({
      queueName: queue,
      job: job(queue, 'c', {}, { ...childOpts, jobId: id }, {
        parentId: parent,
        parentQueueName: queue,
      }),
    })),
  ]);
}

/** A job's place: its queue and id. */
export type Ref = { queue: string; id: string };

/** One job of a flow, as `saveFlow` takes it. */
export type FlowNode = { queueName: string; job: NewJob };

/**
 * A flow node named after its id: `pending` > 0 makes it a parent in `waiting-children`;
 * `parent` makes it a child; `opts` adds options.
 */
export function flowNode(
  ref: Ref,
  parent: Ref | null,
  pending = 0,
  policy?: ChildFailurePolicy,
  opts: JobOptions = {},
): FlowNode {
  return {
    queueName: ref.queue,
    job: job(ref.queue, ref.id, {}, { ...opts, jobId: ref.id, failParentOnChildFailure: policy }, {
      state: pending > 0 ? 'waiting-children' : 'waiting',
      pendingChildrenCount: pending,
      parentId: parent?.id ?? null,
      parentQueueName: parent?.queue ?? null,
    }),
  };
}

/** Saves `n` waiting jobs (`data: { i }`) one by one and returns their ids. */
export async function saveN(
  store: StoreInterface,
  queue: string,
  n: number,
  opts: JobOptions = {},
  name = 'task',
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await store.saveJob(queue, job(queue, name, { i }, opts)));
  return ids;
}

/** Claims one job with a 30 s lock (fails the case when nothing can be claimed). */
export async function claim(
  store: StoreInterface,
  queue: string,
  worker = 'w1',
): Promise<JobData & { lockToken: string }> {
  const got = await store.fetchNextJob(queue, worker, 30_000);
  if (!got || !got.lockToken) throw new Error(`expected a job to claim in ${queue}`);
  return got as JobData & { lockToken: string };
}

/** Claims jobs one by one (with `opts`) until none is left; returns their ids in claim order. */
export async function claimAll(
  store: StoreInterface,
  queue: string,
  opts: Parameters<StoreInterface['fetchNextJob']>[3] = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    const got = await store.fetchNextJob(queue, 'w1', 30_000, opts);
    if (!got) return ids;
    ids.push(got.id);
  }
}

/** Records a queue's events; `until` waits for a matching one. */
export interface Recorder {
  /** Every event received so far. */
  events: StoreEvent[];
  /** Events of one job (and type, when given). */
  of(jobId: string, type?: string): StoreEvent[];
  /** Waits until `match` accepts a received event and returns it. */
  until(match: (e: StoreEvent) => boolean, message?: string): Promise<StoreEvent>;
  /** Stops recording. */
  stop(): void;
}

/** Subscribes to a queue and records its events. */
export function record(store: StoreInterface, queue: string): Recorder {
  const events: StoreEvent[] = [];
  const listener = (e: StoreEvent) => void events.push(e);
  store.subscribe(queue, listener);
  return {
    events,
    of: (jobId, type) => events.filter((e) => e.jobId === jobId && (!type || e.type === type)),
    until: (match, message = 'event') =>
      eventually(() => events.find(match), { message, timeout: 5000 }),
    stop: () => store.unsubscribe(queue, listener),
  };
}

/** The ids of jobs, in order. */
export function ids(jobs: Array<{ id: string }>): string[] {
  return jobs.map((j) => j.id);
}
