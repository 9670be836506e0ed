/**
 * Flows: a parent runs after all its children, across queues, and reads their results; a later
 * flow joins an existing parent with `opts.parent` on its root.
 *
 *   npx -y deno@2 run -A docs/examples/flows.ts
 *
 * @module
 */
import { FlowProducer, QueueEvents, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';

/** Runs the example, printing with `log`. */
export async function main(log: (line: string) => void = console.log): Promise<void> {
  const store = new MemoryStore();
  await store.connect();
  const flows = new FlowProducer({ store });
  const events = new QueueEvents('orders', { store });

  const tree = await flows.add({
    name: 'ship-order',
    queueName: 'orders',
    data: { order: 42 },
    children: [
      { name: 'charge', queueName: 'payments', data: { amount: 30 } },
      { name: 'reserve', queueName: 'stock', data: { sku: 'tea' } },
    ],
  });
  log(`parent is ${tree.job.state} with ${tree.children?.length} children`);

  // A later flow hung under the same order (opts.parent on its root): the order waits for it too.
  await flows.add({
    name: 'pack',
    queueName: 'packing',
    data: { box: 'small' },
    opts: { parent: { id: tree.job.id, queue: 'orders' } },
    children: [{ name: 'reserve', queueName: 'stock', data: { sku: 'box' } }],
  });
  const now = await flows.getFlow({ id: tree.job.id, queueName: 'orders', depth: 1 });
  log(`parent now waits for ${now?.children?.length} children`);

  const payments = new Worker('payments', (job) => `charged ${job.data.amount}`, { store });
  const stock = new Worker('stock', (job) => `reserved ${job.data.sku}`, { store });
  const packing = new Worker('packing', async (job) => {
    const values = await job.getChildrenValues<string>();
    return `packed in a ${job.data.box} box (${Object.values(values).join(', ')})`;
  }, { store });
  const orders = new Worker('orders', async (job) => {
    const values = await job.getChildrenValues<string>();
    return `order ${job.data.order}: ${Object.values(values).sort().join(' and ')}`;
  }, { store });

  log(await tree.job.waitUntilFinished(events, 5000) as string);

  await Promise.all([
    payments.close(),
    stock.close(),
    packing.close(),
    orders.close(),
    events.close(),
  ]);
  await store.disconnect();
}

if (import.meta.main) await main();
