/**
 * Runs every TypeScript example in README.md on the runtimes it is written for, and checks
 * what it prints: a `// "text"` comment after a `console.log(...)` names text that must appear
 * in the output. So the README cannot drift from the code.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

const g = globalThis as { Deno?: unknown; Bun?: unknown };
const runtime = g.Deno ? 'deno' : g.Bun ? 'bun' : 'node';

/** The runtimes a block can run on, from the store it imports and the globals it uses. */
function runtimesOf(code: string): string[] {
  if (code.includes('store-sqlite-deno') || code.includes('Deno.')) return ['deno'];
  if (code.includes('store-sqlite-bun')) return ['bun'];
  if (code.includes('store-sqlite-node')) return ['node', 'deno'];
  return ['deno', 'node', 'bun'];
}

const dir = new URL('.tmp/readme/', root);
mkdirSync(dir, { recursive: true });

describe('README examples', () => {
  it('has examples to run', () => {
    assert.ok(blocks.length >= 5, `found ${blocks.length} ts blocks`);
  });
  blocks.forEach((code, i) => {
    const firstLine = code.split('\n').find((l) => l.includes('@conveyor/')) ?? `block ${i}`;
    const runs = runtimesOf(code);
    const skip = runs.includes(runtime) ? false : `written for ${runs.join('/')}, not ${runtime}`;
    it(`block ${i + 1}: ${firstLine}`, { skip }, async () => {
      const expected = [...code.matchAll(/console\.log\(.*\);\s*\/\/\s*"([^"]*)"/g)].map((m) =>
        m[1]
      );
      const file = new URL(`block-${i + 1}-${runtime}.ts`, dir);
      writeFileSync(file, code);
      const logged: string[] = [];
      const log = console.log;
      console.log = (...args: unknown[]) => {
        logged.push(args.map((a) => typeof a === 'string' ? a : JSON.stringify(a)).join(' '));
      };
      try {
        await import(pathToFileURL(file.pathname).href);
        if (code.includes('console.log')) await eventuallyLogged(logged);
      } finally {
        console.log = log;
      }
      const out = logged.join('\n');
      for (const text of expected) assert.ok(out.includes(text), `expected "${text}" in:\n${out}`);
    });
  });
});

/** Blocks that log from an event handler print after the import resolves: wait for it. */
async function eventuallyLogged(logged: string[], timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (logged.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(logged.length > 0, 'the example printed nothing');
}
