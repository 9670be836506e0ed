/**
 * Runs the whole test matrix available on this machine and prints one closing line,
 * `N passed, N failed`. Deno entry point (runtime-specific code is allowed here).
 *
 *   deno run -A tests/run.ts                 # every runtime
 *   deno run -A tests/run.ts --runtime=node  # one runtime (deno | node | bun)
 *   deno run -A tests/run.ts --only=pg       # entry points whose name contains "pg"
 *
 * PostgreSQL: uses `CONVEYOR_PG_URL` when set; otherwise starts a throwaway embedded server for
 * the run and stops it afterwards.
 *
 * @module
 */

const ROOT = new URL('..', import.meta.url).pathname;
const TMP = `${ROOT}.tmp/test-run`;

/** Entry points per runtime: each runtime runs the stores it can host. */
const MATRIX: Record<string, string[]> = {
  deno: [
    'tests/memory.test.ts',
    'tests/sqlite-node.test.ts',
    'tests/sqlite-deno.test.ts',
    'tests/pg.test.ts',
  ],
  node: ['tests/memory.test.ts', 'tests/sqlite-node.test.ts', 'tests/pg.test.ts'],
  bun: ['tests/memory.test.ts', 'tests/sqlite-bun.test.ts', 'tests/pg.test.ts'],
};

/** Extra test files (store-specific cases, examples) run on every runtime listed. */
const EXTRA: Array<{ pattern: RegExp; runtimes: string[] }> = [
  { pattern: /^sqlite-(specific|multiprocess).*\.test\.ts$/, runtimes: ['deno', 'node'] },
  { pattern: /^pg-(?!bouncer\.).*\.test\.ts$/, runtimes: ['deno', 'node', 'bun'] },
  // The suites through PgBouncer once, on Node: the driver is the same on every runtime (they
  // pass on Deno and Bun too), and three more runs of both suites would cost CI minutes.
  { pattern: /^pg-bouncer\.test\.ts$/, runtimes: ['node'] },
  { pattern: /^(examples|readme|core-.*|unit-.*)\.test\.ts$/, runtimes: ['deno', 'node', 'bun'] },
];

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

const args = Object.fromEntries(
  Deno.args.filter((a) => a.startsWith('--')).map((a) => {
    const [k, v] = a.slice(2).split('=');
    return [k, v ?? 'true'];
  }),
);

function filesFor(runtime: string): string[] {
  const files = [...MATRIX[runtime]];
  for (const entry of Deno.readDirSync(`${ROOT}tests`)) {
    if (!entry.isFile) continue;
    for (const extra of EXTRA) {
      if (extra.pattern.test(entry.name) && extra.runtimes.includes(runtime)) {
        files.push(`tests/${entry.name}`);
      }
    }
  }
  const only = args.only;
  return [...new Set(files)]
    .filter((f) => !only || f.includes(only))
    .filter((f) => {
      try {
        Deno.statSync(`${ROOT}${f}`);
        return true;
      } catch {
        return false;
      }
    })
    .sort();
}

/** A runtime that runs longer than this is killed (with its children) and counts as failed. */
const RUNTIME_TIMEOUT_MS = Number(Deno.env.get('CONVEYOR_TEST_TIMEOUT_MIN') ?? 25) * 60_000;

async function run(cmd: string[], env: Record<string, string> = {}): Promise<number> {
  console.log(`\n$ ${cmd.join(' ')}`);
  // In its own process group (setsid), so a hung run can be killed with everything it started.
  const grouped = (await output(['setsid', '--version'])) !== '';
  const argv = grouped ? ['setsid', ...cmd] : cmd;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    env,
    stdout: 'inherit',
    stderr: 'inherit',
  }).spawn();
  const timer = setTimeout(() => {
    console.error(`\n${cmd[0]}: still running after ${RUNTIME_TIMEOUT_MS / 60_000} min, killed`);
    try {
      Deno.kill(grouped ? -child.pid : child.pid, 'SIGKILL');
    } catch { /* already gone */ }
  }, RUNTIME_TIMEOUT_MS);
  try {
    return (await child.status).code;
  } finally {
    clearTimeout(timer);
  }
}

async function output(cmd: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: 'piped',
      stderr: 'null',
    })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : '';
  } catch {
    return '';
  }
}

/** The command that starts Node 24 (the machine's node if it is 24 or later, else npx). */
async function nodeCmd(): Promise<string[]> {
  const v = await output(['node', '--version']);
  return Number(v.match(/^v(\d+)/)?.[1] ?? 0) >= 24 ? ['node'] : ['npx', '-y', 'node@24'];
}

async function bunCmd(): Promise<string[]> {
  return (await output(['bun', '--version'])) ? ['bun'] : ['npx', '-y', 'bun@1'];
}

function decode(s: string): string {
  return s.replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&quot;/g, '"').replace(
    /&#10;/g,
    '\n',
  ).replace(/&amp;/g, '&');
}

/**
 * Counts leaf test cases in a JUnit report. Deno reports suites and tests alike as test cases
 * named `a > b > c`, so a case whose name prefixes another's is a suite, not a test.
 */
function parseJunit(xml: string, runtime: string): Tally {
  const cases: Array<{ name: string; status: 'pass' | 'fail' | 'skip'; detail: string }> = [];
  // Attributes are read quote-aware: Node writes a `>` in a test's name unescaped.
  const re = /<testcase\b((?:[^>"]|"[^"]*")*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1];
    const body = m[3] ?? '';
    const name = decode(attrs.match(/\bname="([^"]*)"/)?.[1] ?? '?');
    const cls = decode(attrs.match(/\bclassname="([^"]*)"/)?.[1] ?? '');
    const status = /<failure|<error/.test(body) ? 'fail' : /<skipped/.test(body) ? 'skip' : 'pass';
    const message = decode(body.match(/message="([^"]*)"/)?.[1] ?? '').split('\n')[0];
    cases.push({
      name,
      status,
      detail: `${runtime}: ${cls ? `${cls} > ` : ''}${name}: ${message}`,
    });
  }
  const names = cases.map((c) => c.name);
  const leaves = runtime === 'deno'
    ? cases.filter((c) => !names.some((n) => n.startsWith(`${c.name} > `)))
    : cases;
  const tally: Tally = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for (const c of leaves) {
    if (c.status === 'pass') tally.passed++;
    else if (c.status === 'skip') tally.skipped++;
    else {
      tally.failed++;
      tally.failures.push(c.detail);
    }
  }
  return tally;
}

/**
 * The JUnit report, once complete (ending in `</testsuites>`): waits up to 15 s for a reporter
 * still writing, and returns what is there then (null: no report), so that a report cut short is
 * reported as such rather than counted short without a word.
 */
async function readReport(path: string): Promise<string | null> {
  let xml: string | null = null;
  for (let i = 0; i < 150; i++) {
    try {
      xml = Deno.readTextFileSync(path);
      if (xml.trimEnd().endsWith('</testsuites>')) return xml;
    } catch { /* not written yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return xml;
}

async function runRuntime(runtime: string, env: Record<string, string>): Promise<Tally> {
  const files = filesFor(runtime);
  if (files.length === 0) {
    return { passed: 0, failed: 1, skipped: 0, failures: [`${runtime}: no test files found`] };
  }
  const junit = `${TMP}/${runtime}.xml`;
  try {
    Deno.removeSync(junit);
  } catch { /* none yet */ }
  let cmd: string[];
  if (runtime === 'deno') {
    cmd = [Deno.execPath(), 'test', '-A', '--no-check', `--junit-path=${junit}`, ...files];
  } else if (runtime === 'node') {
    cmd = [
      ...(await nodeCmd()),
      '--test',
      '--test-concurrency=1',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=junit',
      `--test-reporter-destination=${junit}`,
      ...files,
    ];
  } else {
    cmd = [
      ...(await bunCmd()),
      'test',
      '--timeout=60000',
      '--reporter=junit',
      `--reporter-outfile=${junit}`,
      ...files.map((f) => `./${f}`),
    ];
  }
  const code = await run(cmd, env);
  const xml = await readReport(junit);
  const tally: Tally = xml === null
    ? { passed: 0, failed: 0, skipped: 0, failures: [] }
    : parseJunit(xml, runtime);
  if (xml !== null && !xml.trimEnd().endsWith('</testsuites>')) {
    tally.failed++;
    tally.failures.push(`${runtime}: its JUnit report is incomplete (counted as far as it goes)`);
  }
  if (code !== 0 && tally.failed === 0) {
    tally.failed++;
    tally.failures.push(`${runtime}: exited with code ${code} (a hook, a load error or a crash)`);
  }
  if (tally.passed === 0 && tally.failed === 0) {
    tally.failed++;
    tally.failures.push(`${runtime}: ran no test`);
  }
  return tally;
}

async function main(): Promise<number> {
  Deno.mkdirSync(TMP, { recursive: true });
  const runtimes = args.runtime ? args.runtime.split(',') : Object.keys(MATRIX);
  for (const r of runtimes) {
    if (!MATRIX[r]) {
      console.error(`--runtime must be one of ${Object.keys(MATRIX).join(', ')} (got ${r})`);
      return 2;
    }
  }
  // Node and Bun resolve @conveyor/* through the npm workspace links.
  try {
    Deno.statSync(`${ROOT}node_modules/@conveyor/shared`);
    Deno.statSync(`${ROOT}node_modules/postgres`);
  } catch {
    const code = await run(['npm', 'install', '--no-audit', '--no-fund']);
    if (code !== 0) return code;
  }

  const env: Record<string, string> = {};
  let stopPg: (() => Promise<void>) | undefined;
  const needsPg = runtimes.some((r) => filesFor(r).some((f) => f.includes('pg')));
  if (needsPg && !Deno.env.get('CONVEYOR_PG_URL')) {
    const { startEmbeddedPostgres } = await import('./pg-server.ts');
    const server = await startEmbeddedPostgres();
    env.CONVEYOR_PG_URL = server.url;
    stopPg = server.stop;
    console.log(`embedded PostgreSQL at ${server.url}`);
  }

  const total: Tally = { passed: 0, failed: 0, skipped: 0, failures: [] };
  const lines: string[] = [];
  try {
    for (const r of runtimes) {
      const t = await runRuntime(r, env);
      lines.push(`${r}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
      total.passed += t.passed;
      total.failed += t.failed;
      total.skipped += t.skipped;
      total.failures.push(...t.failures);
    }
  } finally {
    await stopPg?.();
  }
  console.log('\n── summary ──');
  for (const l of lines) console.log(l);
  for (const f of total.failures.slice(0, 50)) console.log(`  FAILED ${f}`);
  console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  return total.failed === 0 ? 0 : 1;
}

Deno.exit(await main());
