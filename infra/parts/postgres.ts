import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { WharfConfig } from '../../core/config.js'
import type { InfraContext, Part } from '../part.js'
import type { Paths } from '../../core/paths.js'
import { execFileP, livePid, portOpen, readPid, stopPid, tail, waitUntil } from '../proc.js'
import { generatedSecret } from '../secrets.js'

/** The unprivileged account Postgres runs as (it refuses root); Debian's postgresql package creates it. */
const PG_USER = 'postgres'
/** Wharf's role and database. */
export const PG_ROLE = 'wharf'
export const PG_DATABASE = 'wharf'

/** Debian keeps each major version's binaries in /usr/lib/postgresql/<major>/bin: take the newest. */
function binDir(): string {
  const root = '/usr/lib/postgresql'
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => existsSync(join(root, d, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (!majors[0]) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)')
  return join(root, majors[0], 'bin')
}

async function uid(user: string): Promise<{ uid: number; gid: number }> {
  const { stdout } = await execFileP('id', ['-u', user])
  const { stdout: g } = await execFileP('id', ['-g', user])
  return { uid: Number(stdout.trim()), gid: Number(g.trim()) }
}

function password(paths: Paths): string {
  return generatedSecret(paths, paths.postgres.password)
}

/** The URL services use; the password is the one `make up` generated under $WHARF_HOME/secrets. */
export function databaseUrl(cfg: WharfConfig, paths: Paths, database = PG_DATABASE): string {
  return `postgres://${PG_ROLE}:${encodeURIComponent(password(paths))}@127.0.0.1:${cfg.ports.postgres}/${database}`
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  await client.connect()
  try {
    return await client.query<T>(sql, params)
  } finally {
    await client.end()
  }
}

async function ready(ctx: InfraContext): Promise<boolean> {
  await query(databaseUrl(ctx.cfg, ctx.paths, 'postgres'), 'select 1')
  return true
}

/** A PostgreSQL cluster of Wharf's own (initdb + pg_ctl) under $WHARF_HOME/postgres, on 127.0.0.1. */
export const postgres: Part = {
  name: 'postgres',
  processes: ({ paths }) => [livePid(paths.postgres.pid)],
  async status(ctx) {
    const address = `postgres://${PG_ROLE}@127.0.0.1:${ctx.cfg.ports.postgres}/${PG_DATABASE}`
    const pid = livePid(ctx.paths.postgres.pid)
    if (!pid) return { up: false, address }
    try {
      const r = await query<{ v: string }>(databaseUrl(ctx.cfg, ctx.paths), "select current_setting('server_version') as v")
      return { up: true, address, pid, version: r.rows[0]?.v }
    } catch (err) {
      return { up: false, address, pid, detail: (err as Error).message }
    }
  },
  async start(ctx) {
    const { cfg, paths } = ctx
    const bin = binDir()
    if (livePid(paths.postgres.pid)) {
      await waitUntil('Postgres', () => ready(ctx), 30_000)
      return 'running'
    }
    if (await portOpen(cfg.ports.postgres)) throw new Error(`Postgres: port ${cfg.ports.postgres} is already taken by another process (set WHARF_PG_PORT)`)
    const owner = await uid(PG_USER)
    const pw = password(paths)
    // Postgres runs as its own account, so it must be able to reach its directory.
    chmodSync(paths.home, 0o755)
    for (const dir of [paths.postgres.data, paths.postgres.socketDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      chownSync(dir, owner.uid, owner.gid)
    }
    if (!existsSync(join(paths.postgres.data, 'PG_VERSION'))) {
      ctx.say('postgres: initdb (first start)')
      const pwfile = join(paths.postgres.socketDir, '.pwfile')
      writeFileSync(pwfile, pw, { mode: 0o600 })
      chownSync(pwfile, owner.uid, owner.gid)
      try {
        await execFileP('runuser', [
          '-u',
          PG_USER,
          '--',
          join(bin, 'initdb'),
          '-D',
          paths.postgres.data,
          '-U',
          PG_ROLE,
          `--pwfile=${pwfile}`,
          '--auth-host=scram-sha-256',
          '--auth-local=scram-sha-256',
          '-E',
          'UTF8',
          '--locale=C.UTF-8',
        ])
      } finally {
        rmSync(pwfile, { force: true })
      }
    }
    mkdirSync(paths.logs, { recursive: true })
    writeFileSync(paths.postgres.log, '', { flag: 'a' })
    chownSync(paths.postgres.log, owner.uid, owner.gid)
    const opts = [
      `-c listen_addresses=127.0.0.1`,
      `-p ${cfg.ports.postgres}`,
      `-c unix_socket_directories=${paths.postgres.socketDir}`,
      `-c max_connections=200`,
      `-c shared_buffers=256MB`,
    ].join(' ')
    try {
      await execFileP('runuser', [
        '-u',
        PG_USER,
        '--',
        join(bin, 'pg_ctl'),
        'start',
        '-D',
        paths.postgres.data,
        '-l',
        paths.postgres.log,
        '-w',
        '-t',
        '60',
        '-o',
        opts,
      ])
    } catch (err) {
      throw new Error(`Postgres did not start: ${(err as Error).message}\n${tail(paths.postgres.log)}`)
    }
    await waitUntil('Postgres', () => ready(ctx), 30_000)
    const exists = await query(databaseUrl(cfg, paths, 'postgres'), 'select 1 from pg_database where datname = $1', [PG_DATABASE])
    if (exists.rowCount === 0) await query(databaseUrl(cfg, paths, 'postgres'), `create database ${PG_DATABASE} owner ${PG_ROLE}`)
    return 'started'
  },
  async stop({ paths }) {
    const pid = livePid(paths.postgres.pid)
    if (!pid) return 'not running'
    // SIGINT is Postgres' "fast" shutdown: roll back open transactions, checkpoint, exit.
    await stopPid(pid, { signal: 'SIGINT', timeoutMs: 60_000 })
    return readPid(paths.postgres.pid) && livePid(paths.postgres.pid) ? 'not running' : 'stopped'
  },
}
