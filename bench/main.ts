/**
 * `deno task bench`: runs every benchmark in this folder, one after another, in one run so
 * that the ratios each prints (against raw SQL and peers) come from the same machine state.
 *
 *   deno task bench            # memory, sqlite, pg
 *   deno task bench sqlite pg  # a selection
 *
 * @module
 */
const ALL = ['memory', 'sqlite', 'pg'];
const selected = Deno.args.length > 0 ? Deno.args : ALL;
let failed = 0;
for (const name of selected) {
  const file = new URL(`./${name}.ts`, import.meta.url).pathname;
  try {
    Deno.statSync(file);
  } catch {
    console.log(`\n### ${name}: no bench/${name}.ts yet`);
    continue;
  }
  console.log(`\n### ${name}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: ['run', '-A', file],
    stdout: 'inherit',
    stderr: 'inherit',
  }).spawn().status;
  if (!status.success) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
