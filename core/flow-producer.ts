/**
 * {@linkcode FlowProducer}: adds trees of jobs (flows) atomically, across queues.
 *
 * @module
 */
import {
  InvalidArgumentError,
  type JobOptions,
  type NewJob,
  type StoreInterface,
} from '@conveyor/shared';
import { type Clock, systemClock } from './clock.ts';
import { buildJob } from './build.ts';
import { Job } from './job.ts';
import { checkInteger, checkKeys, checkName, checkStore } from './validate.ts';

/**
 * A node of a flow to add: a job and its children. The parent runs after every child finished.
 *
 * @example
 * ```ts
 * import type { FlowJob } from '@conveyor/core';
 * const flow: FlowJob = {
 *   name: 'render', queueName: 'video', data: { id: 1 },
 *   children: [{ name: 'frame', queueName: 'frames', data: { n: 1 } }],
 * };
 * ```
 */
export interface FlowJob {
  /** Job name. */
  name: string;
  /** The queue it goes to. */
  queueName: string;
  /** Payload. */
  data?: unknown;
  /**
   * Job options (`failParentOnChildFailure` on a child sets what its failure does to this
   * parent). `parent: { id, queue }` is allowed on a flow's root only: it hangs the whole flow
   * under that existing, unfinished job, which then waits for the root as for any child.
   */
  opts?: JobOptions;
  /** Children, run before this job. */
  children?: FlowJob[];
}

/**
 * A node of a saved flow.
 *
 * @example
 * ```ts
 * import type { JobNode } from '@conveyor/core';
 * function count(n: JobNode): number {
 *   return 1 + (n.children ?? []).reduce((s, c) => s + count(c), 0);
 * }
 * ```
 */
export interface JobNode {
  /** The job. */
  job: Job;
  /** Its children, if any. */
  children?: JobNode[];
}

/**
 * Options of a {@linkcode FlowProducer}.
 *
 * @example
 * ```ts
 * import type { FlowProducerOptions } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const opts: FlowProducerOptions = { store: new MemoryStore() };
 * ```
 */
export interface FlowProducerOptions {
  /** A connected store. */
  store: StoreInterface;
  /** The clock. Default `Date.now`. */
  clock?: Clock;
}

interface Planned {
  queueName: string;
  job: NewJob;
  node: FlowJob;
  children: Planned[];
}

/**
 * Adds flows: trees of jobs of any depth, across queues, saved in one atomic store call.
 * Parents wait in `waiting-children` until every child has finished.
 *
 * @example
 * ```ts
 * import { FlowProducer } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const flows = new FlowProducer({ store });
 * const tree = await flows.add({
 *   name: 'bundle', queueName: 'build', data: {},
 *   children: [
 *     { name: 'compile', queueName: 'build', data: { file: 'a.ts' } },
 *     { name: 'compile', queueName: 'build', data: { file: 'b.ts' } },
 *   ],
 * });
 * console.log(tree.job.state, tree.children?.length); // waiting-children 2
 * ```
 */
export class FlowProducer {
  /** The store. */
  readonly store: StoreInterface;
  readonly #clock: Clock;

  /**
   * @example
   * ```ts
   * import { FlowProducer } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const flows = new FlowProducer({ store: new MemoryStore() });
   * ```
   */
  constructor(opts: FlowProducerOptions) {
    checkStore(opts);
    checkKeys('opts', opts, new Set(['store', 'clock']));
    this.store = opts.store;
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * Adds one flow atomically and returns its tree of jobs. `opts.tx` saves it inside a caller's
   * database transaction (stores that support it; others throw `InvalidArgumentError`).
   *
   * The root may carry `opts.parent: { id, queue }` (BullMQ's): the flow then hangs under that
   * existing job, whose pending children count goes up by one in the same store call; it gets
   * the root's return value and runs once the root (and its other children) finished. A
   * missing parent throws `JobNotFoundError`, a finished one `JobStateError`, and nothing is
   * saved. Below the root, `opts.parent` is refused (a node's parent is the node above).
   *
   * @example
   * ```ts
   * import type { FlowProducer } from '@conveyor/core';
   * declare const flows: FlowProducer;
   * await flows.add({ name: 'parent', queueName: 'q', children: [{ name: 'child', queueName: 'q' }] });
   * // A second flow under an existing job: 'report' waits for 'bundle' too.
   * await flows.add({
   *   name: 'bundle', queueName: 'q', opts: { parent: { id: 'report-1', queue: 'reports' } },
   *   children: [{ name: 'part', queueName: 'q' }],
   * });
   * ```
   */
  async add(flow: FlowJob, opts: { tx?: unknown } = {}): Promise<JobNode> {
    return (await this.addBulk([flow], opts))[0];
  }

  /**
   * Adds several flows in one atomic store call. Each root may have its own `opts.parent` (an
   * existing job, not one of this call: nest such a flow as a child instead).
   *
   * @example
   * ```ts
   * import type { FlowProducer } from '@conveyor/core';
   * declare const flows: FlowProducer;
   * await flows.addBulk([{ name: 'a', queueName: 'q' }, { name: 'b', queueName: 'q' }]);
   * ```
   */
  async addBulk(flows: FlowJob[], opts: { tx?: unknown } = {}): Promise<JobNode[]> {
    if (!Array.isArray(flows)) throw new InvalidArgumentError('flows', flows, 'an array');
    const now = this.#clock.now();
    const flat: Planned[] = [];
    const roots = flows.map((f, i) => this.#plan(f, `flows[${i}]`, null, now, flat));
    // A root's opts.parent is an existing job: the store counts the root for it. One of this
    // call would be read as a link inside the flows, with no count, so it is refused.
    const planned = new Set(flat.map((p) => `${p.queueName}\0${p.job.opts.jobId}`));
    roots.forEach((root, i) => {
      const parent = root.job.opts.parent;
      if (parent && planned.has(`${parent.queue}\0${parent.id}`)) {
        throw new InvalidArgumentError(
          `flows[${i}].opts.parent`,
          parent,
          'an existing job, not a job of this call (nest that flow as a child instead)',
        );
      }
    });
    await this.store.saveFlow(
      flat.map((p) => ({ queueName: p.queueName, job: p.job })),
      opts.tx === undefined ? undefined : { tx: opts.tx },
    );
    const toNode = (p: Planned): JobNode => {
      const node: JobNode = { job: new Job(this.store, p.job, p.job.opts.jobId!) };
      if (p.children.length > 0) node.children = p.children.map(toNode);
      return node;
    };
    return roots.map(toNode);
  }

  /**
   * Reads a flow back as a tree, from its root job, down to `depth` levels (default all) and at
   * most `maxChildren` children per node (default all). Null if the root does not exist.
   *
   * @example
   * ```ts
   * import type { FlowProducer } from '@conveyor/core';
   * declare const flows: FlowProducer;
   * const tree = await flows.getFlow({ id: 'root-id', queueName: 'q' });
   * ```
   */
  async getFlow(
    opts: { id: string; queueName: string; depth?: number; maxChildren?: number },
  ): Promise<JobNode | null> {
    checkName('opts.id', opts?.id);
    checkName('opts.queueName', opts.queueName);
    if (opts.depth !== undefined) checkInteger('opts.depth', opts.depth, 0);
    if (opts.maxChildren !== undefined) checkInteger('opts.maxChildren', opts.maxChildren, 0);
    const root = await this.store.getJob(opts.queueName, opts.id);
    if (!root) return null;
    const walk = async (job: Job, depth: number): Promise<JobNode> => {
      const node: JobNode = { job };
      if (depth === 0) return node;
      let children = await this.store.getChildrenJobs(job.queueName, job.id);
      if (opts.maxChildren !== undefined) children = children.slice(0, opts.maxChildren);
      if (children.length > 0) {
        node.children = await Promise.all(
          children.map((c) => walk(new Job(this.store, c), depth - 1)),
        );
      }
      return node;
    };
    return await walk(new Job(this.store, root), opts.depth ?? Infinity);
  }

  /** Releases the handle (the store stays open). */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Same as `close`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #plan(
    flow: FlowJob,
    label: string,
    parent: Planned | null,
    now: number,
    flat: Planned[],
  ): Planned {
    if (typeof flow !== 'object' || flow === null) {
      throw new InvalidArgumentError(
        label,
        flow,
        'a flow job { name, queueName, data, opts, children }',
      );
    }
    checkName(`${label}.queueName`, flow.queueName);
    if (flow.children !== undefined && !Array.isArray(flow.children)) {
      throw new InvalidArgumentError(`${label}.children`, flow.children, 'an array');
    }
    if (parent !== null && flow.opts?.parent !== undefined) {
      throw new InvalidArgumentError(
        `${label}.opts.parent`,
        flow.opts.parent,
        "absent below a flow's root (a node's parent is the node above; only the root may name an existing job)",
      );
    }
    const opts: JobOptions = { ...flow.opts };
    opts.jobId ??= crypto.randomUUID();
    const children = flow.children ?? [];
    const job = buildJob(flow.queueName, flow.name, flow.data ?? null, opts, `${label}.opts`, now, {
      parentId: parent ? parent.job.opts.jobId! : null,
      parentQueueName: parent ? parent.queueName : null,
      pendingChildrenCount: children.length,
      ...(children.length > 0 ? { state: 'waiting-children' as const } : {}),
    });
    const planned: Planned = { queueName: flow.queueName, job, node: flow, children: [] };
    flat.push(planned);
    planned.children = children.map((c, i) =>
      this.#plan(c, `${label}.children[${i}]`, planned, now, flat)
    );
    return planned;
  }
}
