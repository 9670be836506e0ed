/**
 * A throwaway PgBouncer in transaction pooling mode in front of a test PostgreSQL, for the suites
 * of the store's poll-only mode (`listen: false`), the mode meant for such a pooler. Needs the
 * `pgbouncer` program (Debian: `apt-get install pgbouncer`), or `CONVEYOR_PGBOUNCER` naming it.
 * When run as root, PgBouncer runs as the `postgres` user (it refuses to run as root).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { freePort, type PgServer, untilAccepting, userIds } from './pg-server.ts';

/** The PgBouncer program to run: `CONVEYOR_PGBOUNCER`, else `pgbouncer`. */
const PROGRAM = process.env.CONVEYOR_PGBOUNCER ?? 'pgbouncer';

/**
 * Whether PgBouncer can be run here: its version line, or null when the program is missing.
 *
 * @example
 * ```ts
 * import { pgbouncerVersion } from './pg-bouncer.ts';
 * console.log((await pgbouncerVersion()) ?? 'no PgBouncer here');
 * ```
 */
export function pgbouncerVersion(): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(PROGRAM, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.on('error', () => resolve(null));
    child.on('exit', (code) => resolve(code === 0 ? out.split('\n')[0].trim() : null));
  });
}

/**
 * Starts PgBouncer (transaction pooling, any user, no password) in front of the server at
 * `serverUrl`, and resolves with its URL (same user and database) once it passes a query on.
 *
 * @example
 * ```ts
 * import { startPgBouncer } from './pg-bouncer.ts';
 * const bouncer = await startPgBouncer('postgres://postgres@127.0.0.1:5432/test');
 * console.log(bouncer.url); // postgres://postgres@127.0.0.1:<port>/test
 * await bouncer.stop();
 * ```
 */
export async function startPgBouncer(serverUrl: string): Promise<PgServer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username) || 'postgres';
  const database = server.pathname.slice(1) || user;
  const dir = await mkdtemp(join(tmpdir(), 'conveyor-pgbouncer-'));
  const port = await freePort();
  const target = [
    `host=${server.hostname}`,
    `port=${server.port || 5432}`,
    `user=${user}`,
    `dbname=${database}`,
    ...(server.password ? [`password=${decodeURIComponent(server.password)}`] : []),
  ].join(' ');
  const ini = join(dir, 'pgbouncer.ini');
  await writeFile(
    ini,
    `[databases]
${database} = ${target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
logfile = ${join(dir, 'pgbouncer.log')}
pidfile = ${join(dir, 'pgbouncer.pid')}
ignore_startup_parameters = extra_float_digits, options
`,
  );
  const args = [ini];
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    const { uid, gid } = await userIds('postgres');
    await chown(dir, uid, gid);
    args.unshift('-u', 'postgres');
  }
  const child = spawn(PROGRAM, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log = (log + String(d)).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    child.kill('SIGTERM');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await untilAccepting(url, () => child.exitCode === null, 'PgBouncer', () => log, 15_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, stop };
}
