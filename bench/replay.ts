/**
 * The replay benchmark (`npm run bench:replay`): appends BENCH_REPLAY_EVENTS (default 1,000,000)
 * realistic events (apps created, config set, pushes built, released and deployed, containers
 * started and stopped, domains, collaborators, scaling) over BENCH_REPLAY_APPS (default 2,000) apps
 * into a namespace of its own, then rebuilds every read model from them the way `wharf admin:replay`
 * does (shadow schemas, one read of the log, swap), in a database of its own, and prints events/s.
 * Goal: >= 100,000 events/s. It removes its stream and database at the end.
 *
 * Where: WHARF_NATS_URL and WHARF_DATABASE_URL, else what `make up` wrote to $WHARF_HOME/wharf.env.
 * Run compiled (`npm run bench:replay` builds first), as the platform runs.
 *
 * The figure is events (not commits: one commit may carry several events) per second of wall time.
 * Beside it the CPU time the replay took in this process and in the Postgres backends serving it
 * (read from /proc when Postgres runs on this machine): on a shared machine the wall time depends
 * on the load, the CPU time much less.
 *
 * To measure again without appending again: BENCH_REPLAY_KEEP=1 keeps the stream (and prints its
 * namespace); BENCH_REPLAY_NAMESPACE=<namespace> replays that kept stream instead of filling a new
 * one, and keeps it too (delete it with `BENCH_REPLAY_NAMESPACE=<namespace> BENCH_REPLAY_DROP=1`).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { loadConfig } from '../core/config.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, streamId, type NewEvent } from '../events/index.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { countEvents, getReplay, migrateCore, readCheckpoints, startReplay, wharfProjections, type ReplayJob } from '../projections/index.js'

const cfg = loadConfig(withPlatformEnv(process.env))
if (!cfg.databaseUrl) throw new Error('no Postgres to measure against: run `make up` first (or set WHARF_DATABASE_URL)')
const EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 1_000_000)
const APPS = Number(process.env.BENCH_REPLAY_APPS ?? 2_000)
/** Apps appended to at once (each writer appends its app's commits one after another). */
const WRITERS = 256
const TARGET_PER_SEC = 100_000
/** The figure for this machine (2 cores): 1,000,000 events in at most this many seconds. */
const TARGET_SECONDS_PER_MILLION = 15
/** One read model only (BENCH_REPLAY_PROJECTION=<name>), to see what each costs; default: all of them. */
const only = process.env.BENCH_REPLAY_PROJECTION || undefined
/**
 * BENCH_REPLAY_STAGES=1: each stage of the replay as it is passed (the log read, each read model
 * written and indexed, the swap) on stderr, with the wall and CPU seconds so far; the JSON line at the
 * end has them always (`stages`), CPU of every Postgres process there (`postgresAll`), not only the
 * bench's backends.
 */
const showStages = process.env.BENCH_REPLAY_STAGES === '1'
/** Events per read and transaction (BENCH_REPLAY_BATCH), default `admin:replay`'s. */
const batch = Number(process.env.BENCH_REPLAY_BATCH ?? 0) || undefined

const suffix = `${process.pid}_${Date.now().toString(36)}`
const reused = process.env.BENCH_REPLAY_NAMESPACE
if (reused !== undefined && !/^benchreplay_[a-z0-9_]+$/.test(reused))
  throw new Error(`BENCH_REPLAY_NAMESPACE must be a namespace this bench made (benchreplay_...), not ${reused}`)
const keep = reused !== undefined ? process.env.BENCH_REPLAY_DROP !== '1' : process.env.BENCH_REPLAY_KEEP === '1'
const namespace = reused ?? `benchreplay_${suffix}`
const database = `bench_replay_${suffix}`
const store = await JetStreamEventStore.connect({
  servers: cfg.natsUrl,
  catalogue: wharfCatalogue(),
  subjects: new EventSubjects(namespace),
  name: 'wharf-bench-replay',
})
const admin = new pg.Client({ connectionString: cfg.databaseUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${database}`)
const url = new URL(cfg.databaseUrl)
url.pathname = `/${database}`
// Idle connections stay open, so that the CPU time of their backends can be read at the end.
const pool = new pg.Pool({ connectionString: url.toString(), max: 10, idleTimeoutMillis: 0 })
// DROP DATABASE ... WITH (FORCE) at the end ends connections the pool may still hold.
pool.on('error', () => {})

const ctx = { actor: 'system:bench', expectedVersion: 'any' as const }
const hex = (n: number) => n.toString(16).padStart(8, '0')

/** One app's history, commit by commit (each commit: the events one command or service appends to one stream). */
function* appHistory(i: number): Generator<{ stream: string; events: NewEvent[] }> {
  const app = `app${i}`
  const owner = `user${i % 97}`
  yield { stream: streamId('app', app), events: [{ type: 'AppCreated', data: { app, owner } }] }
  let release = 0
  let slot = 0
  const config: Record<string, string> = {}
  let running: string[] = []
  for (let cycle = 0; ; cycle++) {
    // A config change, now and then a collaborator, a domain, a scale or maintenance.
    const key = `KEY_${cycle % 7}`
    config[key] = `value-${cycle}-${'x'.repeat(cycle % 40)}`
    yield { stream: streamId('app', app), events: [{ type: 'ConfigSet', data: { app, values: { [key]: config[key]! } } }] }
    if (cycle % 5 === 1) yield { stream: streamId('app', app), events: [{ type: 'CollaboratorAdded', data: { app, username: `user${(i + cycle) % 97}` } }] }
    if (cycle % 9 === 2) yield { stream: streamId('app', app), events: [{ type: 'DomainAdded', data: { app, domain: `d${cycle}.${app}.example.com` } }] }
    if (cycle % 11 === 3) yield { stream: streamId('app', app), events: [{ type: 'MaintenanceSet', data: { app, enabled: cycle % 2 === 0 } }] }
    // A push: received, built, released, deployed (two web containers replace the running ones).
    const build = randomUUID()
    const sha = `${hex(i)}${hex(cycle)}${'0'.repeat(24)}`
    yield {
      stream: streamId('build', build),
      events: [
        { type: 'PushReceived', data: { app, sha, user: owner, fingerprint: 'SHA256:bench' } },
        { type: 'BuildStarted', data: { app, user: owner, kind: 'git', sha, stack: 'node', builder: 'bench:1' } },
      ],
    }
    const image = `127.0.0.1:5000/${app}:${sha.slice(0, 12)}`
    yield { stream: streamId('build', build), events: [{ type: 'BuildSucceeded', data: { app, image, procfile: { web: 'node server.js' }, port: 5000 } }] }
    release++
    const released: NewEvent[] = [
      {
        type: 'ReleaseCreated',
        data: {
          app,
          version: release,
          image,
          procfile: { web: 'node server.js' },
          port: 5000,
          config: { ...config },
          limits: { memory: {}, cpu: {} },
          by: owner,
          summary: `${owner} deployed ${sha.slice(0, 7)}`,
          build,
        },
      },
    ]
    if (release === 1) released.push({ type: 'FormationScaled', data: { app, formation: { web: 2 } } })
    yield { stream: streamId('app', app), events: released }
    yield { stream: streamId('runtime', app), events: [{ type: 'DeployStarted', data: { app, release, formation: { web: 2 } } }] }
    const started = [0, 1].map(() => `${hex(i)}${hex(++slot)}${'c'.repeat(48)}`)
    yield {
      stream: streamId('runtime', app),
      events: started.map((container, k) => ({
        type: 'ContainerStarted',
        data: { app, type: 'web', release, container, host: 'node1', port: 30000 + k, number: k + 1 },
      })),
    }
    if (running.length > 0) {
      yield { stream: streamId('runtime', app), events: running.map((container) => ({ type: 'ContainerStopping', data: { app, type: 'web', container } })) }
      yield { stream: streamId('runtime', app), events: running.map((container) => ({ type: 'ContainerStopped', data: { app, type: 'web', container } })) }
    }
    running = started
    yield { stream: streamId('runtime', app), events: [{ type: 'DeployCompleted', data: { app, release } }] }
  }
}

/** Appends about `total` events: WRITERS apps at a time, each its history in order, until the total is reached. */
async function fill(total: number): Promise<number> {
  let appended = 0
  let next = 0
  const started = performance.now()
  let shown = started
  const histories = Array.from({ length: APPS }, (_, i) => appHistory(i))
  const writer = async (): Promise<void> => {
    while (appended < total) {
      const i = next++ % APPS
      // A few commits of one app per turn keeps its order and spreads the log over many apps.
      for (let k = 0; k < 4 && appended < total; k++) {
        const c = histories[i]!.next().value!
        await store.append(c.stream, c.events, ctx)
        appended += c.events.length
      }
      const now = performance.now()
      if (now - shown > 5_000) {
        shown = now
        process.stderr.write(`appending: ${appended} of ${total} (${Math.round(appended / ((now - started) / 1000))} events/s)\n`)
      }
    }
  }
  await Promise.all(Array.from({ length: WRITERS }, writer))
  return appended
}

/** CPU seconds (user + system) of the processes `pids` so far, from /proc; undefined when one cannot be read (Postgres elsewhere). */
function cpuSecondsOf(pids: number[], what: 'process' | 'task' = 'process'): number | undefined {
  let ticks = 0
  try {
    for (const pid of pids) {
      // A task: this process's main thread only (its id is the pid).
      const stat = readFileSync(what === 'task' ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    }
  } catch {
    return undefined
  }
  return ticks / 100
}

/** The pids of the Postgres backends connected to the bench's database. */
async function backendPids(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database])
  return rows.map((r) => r.pid)
}

async function cleanup(): Promise<void> {
  if (keep) process.stderr.write(`kept the stream: BENCH_REPLAY_NAMESPACE=${namespace}\n`)
  else await store.destroy().catch((err) => console.error(`could not delete stream of ${namespace}: ${err}`))
  await store.close().catch(() => {})
  await pool.end().catch(() => {})
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch((err) => console.error(`could not drop database ${database}: ${err}`))
  await admin.end().catch(() => {})
}

// Interrupted: still remove the stream and the database.
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)))

try {
  const t0 = performance.now()
  if (reused === undefined) {
    const appended = await fill(EVENTS)
    process.stderr.write(`appended ${appended} events (log ends at ${await store.lastSeq()}) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  const last = await store.lastSeq()

  await migrateCore(pool)
  let ended!: (j: ReplayJob) => void
  const done = new Promise<ReplayJob>((resolve) => (ended = resolve))
  // Connections opened before the clock starts, so that all their backends' CPU is counted from here.
  await Promise.all(Array.from({ length: 10 }, () => pool.connect())).then((cs) => {
    for (const c of cs) c.release()
  })
  const pgPids = await backendPids()
  const pgBefore = cpuSecondsOf(pgPids)
  // nats-server's share (reading the log out of it), when `make up` runs it here.
  const natsPid = (() => {
    try {
      return [Number(readFileSync(`${cfg.home}/run/nats.pid`, 'utf8').trim())]
    } catch {
      return []
    }
  })()
  const natsBefore = natsPid.length > 0 ? cpuSecondsOf(natsPid) : undefined
  // Every process of Postgres (the bench's backends, the index builds' parallel workers, WAL writer,
  // checkpointer; those that ended are in the postmaster's children's time), for the stages' CPU.
  const postmaster = (() => {
    try {
      return Number(readFileSync(`${cfg.home}/postgres/postmaster.pid`, 'utf8').split('\n')[0])
    } catch {
      return undefined
    }
  })()
  const postgresAll = (): number | undefined => {
    if (postmaster === undefined) return undefined
    try {
      const children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
      const stat = readFileSync(`/proc/${postmaster}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // A child that ended between the listing and its read counts in the postmaster's children's time.
      return children.reduce((sum, pid) => sum + (cpuSecondsOf([pid]) ?? 0), 0) + (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100
    } catch {
      return undefined
    }
  }
  const pgAllBefore = postgresAll()
  const stages: { stage: string; seconds: number; node: number; nodeMainThread: number | null; postgresAll: number | null; nats: number | null }[] = []
  const onStage = (stage: string): void => {
    const u = process.cpuUsage(cpuBefore)
    const main = cpuSecondsOf([process.pid], 'task')
    const pgAll = postgresAll()
    const nats = natsPid.length > 0 ? cpuSecondsOf(natsPid) : undefined
    const r2 = (x: number) => Math.round(x * 100) / 100
    const s = {
      stage,
      seconds: r2((performance.now() - started) / 1000),
      node: r2((u.user + u.system) / 1e6),
      nodeMainThread: main === undefined || mainBefore === undefined ? null : r2(main - mainBefore),
      postgresAll: pgAll === undefined || pgAllBefore === undefined ? null : r2(pgAll - pgAllBefore),
      nats: nats === undefined || natsBefore === undefined ? null : r2(nats - natsBefore),
    }
    stages.push(s)
    if (showStages) process.stderr.write(`${JSON.stringify(s)}\n`)
  }
  const cpuBefore = process.cpuUsage()
  const mainBefore = cpuSecondsOf([process.pid], 'task')
  const started = performance.now()
  const job = await startReplay({
    store,
    pool,
    projections: wharfProjections(),
    projection: only,
    ...(batch ? { batch } : {}),
    actor: 'system:bench',
    onEnd: (j) => ended(j),
    onStage,
  })
  const ticker = setInterval(() => {
    void getReplay(pool, job.id).then((j) => {
      const p = j?.progress
      if (p) process.stderr.write(`${j.phase}: ${p.seq} of ${p.total}, ${p.eventsPerSec} events/s, ETA ${p.etaSeconds ?? '?'} s\n`)
    })
  }, 2_000)
  const end = await done
  clearInterval(ticker)
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const nodeCpu = (cpu.user + cpu.system) / 1e6
  // The replay's own thread (the log is read on another): what bounds the wall time when Postgres keeps up.
  const mainAfter = cpuSecondsOf([process.pid], 'task')
  const mainCpu = mainBefore === undefined || mainAfter === undefined ? undefined : mainAfter - mainBefore
  const pgAfter = cpuSecondsOf(pgPids)
  const pgCpu = pgBefore === undefined || pgAfter === undefined ? undefined : pgAfter - pgBefore
  const natsAfter = natsPid.length > 0 ? cpuSecondsOf(natsPid) : undefined
  const natsCpu = natsBefore === undefined || natsAfter === undefined ? undefined : natsAfter - natsBefore
  if (end.status !== 'done' || !end.result) throw new Error(`replay failed: ${end.error}`)
  for (const r of await readCheckpoints(pool))
    if (r.seq !== last || r.status !== 'running') throw new Error(`${r.name} is at ${r.seq} (${r.status}), not ${last}`)
  // The event log read model has a row per event: the number of events replayed (commits are fewer).
  // Another read model alone: its commits/s (BENCH_REPLAY_EVENTS_KNOWN gives the events of a kept stream).
  const events = only === undefined || only === 'eventlog' ? await countEvents(pool) : Number(process.env.BENCH_REPLAY_EVENTS_KNOWN ?? last)
  const rate = events / seconds
  const r1 = (x: number) => Math.round(x * 10) / 10
  console.log(
    `rebuilt ${wharfProjections().length} read models from ${events} events (${last} commits) in ${seconds.toFixed(1)} s: ${Math.round(rate)} events/s (goal >= ${TARGET_PER_SEC}: ${rate >= TARGET_PER_SEC ? 'yes' : 'NO'}; 1M in <= ${TARGET_SECONDS_PER_MILLION} s on this machine: ${rate >= 1_000_000 / TARGET_SECONDS_PER_MILLION ? 'yes' : 'NO'}); CPU: this process ${nodeCpu.toFixed(1)} s (main thread ${mainCpu === undefined ? '?' : mainCpu.toFixed(1)} s), Postgres backends ${pgCpu === undefined ? '?' : pgCpu.toFixed(1)} s, nats-server ${natsCpu === undefined ? '?' : natsCpu.toFixed(1)} s; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  )
  console.log(
    JSON.stringify({
      events,
      commits: last,
      seconds: r1(seconds),
      eventsPerSec: Math.round(rate),
      goal: TARGET_PER_SEC,
      cpuSeconds: {
        node: r1(nodeCpu),
        nodeMainThread: mainCpu === undefined ? null : r1(mainCpu),
        postgres: pgCpu === undefined ? null : r1(pgCpu),
        nats: natsCpu === undefined ? null : r1(natsCpu),
      },
      projection: only ?? null,
      stages: stages.filter((s) => !/^(written|indexed) /.test(s.stage) || /(eventlog|releases|builds)$/.test(s.stage)),
    }),
  )
} finally {
  await cleanup()
}
