/**
 * The events benchmark (`npm run bench:events`): append rates, replay rate into a Postgres read model
 * and projection lag, against the platform's NATS and Postgres (`make up`). It works in a namespace
 * and schema of its own and removes them at the end.
 *
 * Where: WHARF_NATS_URL and WHARF_DATABASE_URL, else what `make up` wrote to $WHARF_HOME/wharf.env.
 * Run compiled (`npm run bench:events` builds first), as the platform runs.
 */
import pg from 'pg'
import { loadConfig } from '../core/config.js'
import { createLogger } from '../core/log.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, streamId, type NewEvent } from '../events/index.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { CHECKPOINT_CHANNEL, nextSchemaOf, Projector, schemaOf, type CheckpointNotice } from '../projections/index.js'
import { countingProjection } from '../projections/testing/counting.js'

const cfg = loadConfig(withPlatformEnv(process.env))
const NATS_URL = cfg.natsUrl
if (!cfg.databaseUrl) throw new Error('no Postgres to measure against: run `make up` first (or set WHARF_DATABASE_URL)')
const DATABASE_URL = cfg.databaseUrl

/** Awaited appends before measuring, so the JIT has compiled the append path. */
const WARMUP_MS = 1_000
const AWAITED_MS = 3_000
const PIPELINED_MS = 3_000
const PIPELINE_STREAMS = 256
const REPLAY_EVENTS = 100_000
const LAG_RATE = 1_000
const LAG_MS = 10_000

const TARGETS = { awaitedAppendPerSec: 6_000, replayPerSec: 50_000, lagP99Ms: 50 }

const suffix = `${process.pid}_${Date.now().toString(36)}`
const namespace = `bench_${suffix}`
const projectionName = `bench_${suffix}`
const store = await JetStreamEventStore.connect({ servers: NATS_URL, catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace), name: 'wharf-bench' })
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 })
let projector: Projector | undefined

const event = (app: string, n: number): NewEvent => ({ type: 'ConfigSet', data: { app, values: { N: String(n) } } })
const ctx = { actor: 'system:bench' }

/** Sequential awaited appends to one stream, each with the expected version. */
async function awaitedAppends(): Promise<number> {
  const app = 'awaited'
  const stream = streamId('app', app)
  let version = (await store.append(stream, [{ type: 'AppCreated', data: { app, owner: 'bench' } }], { ...ctx, expectedVersion: 0 })).lastSeq
  for (const warmup = performance.now(); performance.now() - warmup < WARMUP_MS; ) {
    version = (await store.append(stream, [event(app, -1)], { ...ctx, expectedVersion: version })).lastSeq
  }
  let n = 0
  const started = performance.now()
  while (performance.now() - started < AWAITED_MS) {
    version = (await store.append(stream, [event(app, n)], { ...ctx, expectedVersion: version })).lastSeq
    n++
  }
  return n / ((performance.now() - started) / 1000)
}

/** `streams` writers at once, each appending to its own stream with the expected version, for `ms`. */
async function pipelinedAppends(ms: number, streams: number, prefix: string, stopAt = Infinity): Promise<{ rate: number; count: number }> {
  let count = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const app = `${prefix}${i}`
      const stream = streamId('app', app)
      let version = (await store.readStream(stream)).version
      if (version === 0) version = (await store.append(stream, [{ type: 'AppCreated', data: { app, owner: 'bench' } }], { ...ctx, expectedVersion: 0 })).lastSeq
      while (performance.now() - started < ms && count < stopAt) {
        version = (await store.append(stream, [event(app, count)], { ...ctx, expectedVersion: version })).lastSeq
        count++
      }
    }),
  )
  return { rate: count / ((performance.now() - started) / 1000), count }
}

/** Builds the read model from seq 1 (the projector's rebuild path) and returns events/s. */
async function replay(): Promise<{ rate: number; events: number }> {
  const last = await store.lastSeq()
  if (last < REPLAY_EVENTS) await pipelinedAppends(120_000, PIPELINE_STREAMS, 'fill', REPLAY_EVENTS - last + PIPELINE_STREAMS)
  const events = await store.lastSeq()
  projector = new Projector({ store, pool, projections: [countingProjection(projectionName)], log: createLogger({ level: 'warn' }), replayBatch: 2_000 })
  const started = performance.now()
  await projector.start()
  const seconds = (performance.now() - started) / 1000
  const [cp] = await projector.checkpoints()
  if (!cp || cp.seq !== events) throw new Error(`replay stopped at ${cp?.seq} of ${events}`)
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${schemaOf(projectionName)}.hits`)
  if (rows[0].n !== events) throw new Error(`read model holds ${rows[0].n} rows for ${events} events`)
  return { rate: events / seconds, events }
}

/** Appends at a steady `LAG_RATE` and measures append start -> checkpoint NOTIFY received, ms. */
async function lag(): Promise<{ p50: number; p99: number; max: number; count: number }> {
  const listener = await pool.connect()
  const latencies: number[] = []
  const waiting = new Map<number, number>()
  let visible = 0
  listener.on('notification', (msg) => {
    if (msg.channel !== CHECKPOINT_CHANNEL || !msg.payload) return
    const n = JSON.parse(msg.payload) as CheckpointNotice
    if (n.name !== projectionName) return
    visible = Math.max(visible, n.seq)
    const now = performance.now()
    for (const [seq, t0] of waiting) {
      if (seq > visible) continue
      latencies.push(now - t0)
      waiting.delete(seq)
    }
  })
  await listener.query(`LISTEN ${CHECKPOINT_CHANNEL}`)
  const inFlight = new Set<Promise<void>>()
  let failure: unknown
  let sent = 0
  const started = performance.now()
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - started
      const due = Math.min(Math.floor((elapsed * LAG_RATE) / 1000), (LAG_MS * LAG_RATE) / 1000)
      for (; sent < due; sent++) {
        const app = `lag${sent % 50}`
        const t0 = performance.now()
        const p = store.append(streamId('app', app), [event(app, sent)], { ...ctx, expectedVersion: 'any' }).then(
          (r) => {
            if (r.lastSeq <= visible) latencies.push(performance.now() - t0)
            else waiting.set(r.lastSeq, t0)
          },
          (err: unknown) => void (failure ??= err),
        )
        inFlight.add(p)
        void p.finally(() => inFlight.delete(p))
      }
      if (elapsed >= LAG_MS || failure !== undefined) {
        clearInterval(tick)
        resolve()
      }
    }, 1)
  })
  await Promise.all(inFlight)
  if (failure !== undefined) {
    listener.release()
    throw failure
  }
  const deadline = performance.now() + 5_000
  while (waiting.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  await listener.query(`UNLISTEN ${CHECKPOINT_CHANNEL}`)
  listener.release()
  if (waiting.size > 0) throw new Error(`${waiting.size} events never became visible`)
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!
  return { p50: q(0.5), p99: q(0.99), max: latencies.at(-1)!, count: latencies.length }
}

async function cleanup(): Promise<void> {
  await projector?.stop().catch(() => {})
  await pool.query(`DROP SCHEMA IF EXISTS ${schemaOf(projectionName)} CASCADE`).catch(() => {})
  await pool.query(`DROP SCHEMA IF EXISTS ${nextSchemaOf(projectionName)} CASCADE`).catch(() => {})
  await pool.query('DELETE FROM wharf.projection_checkpoints WHERE name = $1', [projectionName]).catch(() => {})
  await store.destroy().catch(() => {})
  await store.close().catch(() => {})
  await pool.end().catch(() => {})
}

const round = (x: number): number => Math.round(x * 10) / 10
try {
  const awaited = await awaitedAppends()
  const pipelined = await pipelinedAppends(PIPELINED_MS, PIPELINE_STREAMS, 'pipe')
  const replayed = await replay()
  const lagged = await lag()

  const rows: [string, string, string, boolean | undefined][] = [
    ['awaited append (expected version)', `${Math.round(awaited)} events/s`, `>= ${TARGETS.awaitedAppendPerSec}`, awaited >= TARGETS.awaitedAppendPerSec],
    [`pipelined append (${PIPELINE_STREAMS} streams in flight)`, `${Math.round(pipelined.rate)} events/s`, '', undefined],
    [
      `replay into Postgres (${replayed.events} events)`,
      `${Math.round(replayed.rate)} events/s`,
      `>= ${TARGETS.replayPerSec}`,
      replayed.rate >= TARGETS.replayPerSec,
    ],
    [`projection lag p50 @ ${LAG_RATE}/s`, `${round(lagged.p50)} ms`, '', undefined],
    [`projection lag p99 @ ${LAG_RATE}/s`, `${round(lagged.p99)} ms`, `<= ${TARGETS.lagP99Ms}`, lagged.p99 <= TARGETS.lagP99Ms],
  ]
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length)), 10]
  console.log(`${'figure'.padEnd(w[0]!)}  ${'measured'.padStart(w[1]!)}  ${'target'.padEnd(w[2]!)}  ok`)
  for (const [name, value, target, ok] of rows) {
    console.log(`${name.padEnd(w[0]!)}  ${value.padStart(w[1]!)}  ${target.padEnd(w[2]!)}  ${ok === undefined ? '' : ok ? 'yes' : 'NO'}`)
  }
  console.log(
    JSON.stringify({
      awaitedAppendPerSec: Math.round(awaited),
      pipelinedAppendPerSec: Math.round(pipelined.rate),
      replayPerSec: Math.round(replayed.rate),
      replayEvents: replayed.events,
      lagP50Ms: round(lagged.p50),
      lagP99Ms: round(lagged.p99),
      lagMaxMs: round(lagged.max),
      lagSamples: lagged.count,
    }),
  )
} finally {
  await cleanup()
}
