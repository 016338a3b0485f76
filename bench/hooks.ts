/**
 * The webhooks benchmark (`npm run bench:hooks`): 100 hooks on one platform, each on an app of its
 * own, a local subscriber on 127.0.0.1, events appended at 200 events/s spread over the 100 apps.
 * Prints the events/s delivered and the delivery latency (append to the subscriber's receipt)
 * p50/p99, then the most events/s the hooks deliver when the log is written as fast as it can be.
 *
 * Where: the running platform's NATS and Postgres (`make up`; WHARF_NATS_URL and WHARF_DATABASE_URL,
 * else $WHARF_HOME/wharf.env), in an event namespace and a database of its own, removed at the end.
 * The webhooks service runs in this process with the platform's outbound policy plus 127.0.0.1 for
 * the local subscriber. Run compiled (`npm run bench:hooks` builds first).
 */
import { createServer } from 'node:http'
import pg from 'pg'
import { loadConfig } from '../core/config.js'
import { createLogger } from '../core/log.js'
import { outboundPolicy, parseOutboundAllow } from '../core/outbound.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { runCommand } from '../domain/command.js'
import { hookDecider } from '../domain/hook/decider.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, streamId } from '../events/index.js'
import { JetStreamEventStore } from '../events/jetstream.js'
import { Projector, waitFor, wharfProjections } from '../projections/index.js'
import { Webhooks } from '../services/webhooks/webhooks.js'

/** Hooks, events/s and seconds of the steady phase: BENCH_HOOKS, BENCH_RATE, BENCH_SECONDS (defaults 100, 200, 60). */
const HOOKS = Number(process.env.BENCH_HOOKS ?? 100)
const RATE = Number(process.env.BENCH_RATE ?? 200)
const STEADY_MS = Number(process.env.BENCH_SECONDS ?? 60) * 1000
const BURST_EVENTS = 5_000
const TARGET = { p99Ms: 100 }

const cfg = loadConfig(withPlatformEnv(process.env))
if (!cfg.databaseUrl) throw new Error('no Postgres to measure against: run `make up` first (or set WHARF_DATABASE_URL)')
const log = createLogger({ level: process.env.WHARF_LOG_LEVEL ?? 'warn' })
const suffix = `${process.pid}_${Date.now().toString(36)}`
const namespace = `benchhooks_${suffix}`
const dbName = `benchhooks_${suffix}`

const admin = new pg.Client({ connectionString: cfg.databaseUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${dbName}`)
const dbUrl = new URL(cfg.databaseUrl)
dbUrl.pathname = `/${dbName}`
const pool = new pg.Pool({ connectionString: dbUrl.href, max: 10 })
// The database is dropped at the end (with force): idle connections then fail, as expected.
pool.on('error', () => {})
const store = await JetStreamEventStore.connect({
  servers: cfg.natsUrl,
  catalogue: wharfCatalogue(),
  subjects: new EventSubjects(namespace),
  name: 'wharf-bench-hooks',
})
const projector = new Projector({ store, pool, projections: wharfProjections(), log, batch: { maxWaitMs: 1 } })
let webhooks: Webhooks | undefined

/** When each event's append was acknowledged by the log, by event id; latencies from there to the subscriber's receipt, and of the appends. */
const sentAt = new Map<string, number>()
const latencies: number[] = []
const appendMs: number[] = []
/** [receipt time, latency] of the steady phase's deliveries, for the figure after its first 10 s. */
const timed: [number, number][] = []
/** With BENCH_DEBUG: when the late deliveries came, to which hook, how late. */
const slow: string[] = []
const benchStart = performance.now()
let received = 0
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const at = performance.now()
    const sent = sentAt.get(req.headers['webhook-id'] as string)
    if (sent !== undefined) {
      latencies.push(at - sent)
      timed.push([at, at - sent])
      if (process.env.BENCH_DEBUG && at - sent > 100) slow.push(`${((at - benchStart) / 1000).toFixed(1)}s:${req.url}:${Math.round(at - sent)}`)
    }
    received++
    res.writeHead(204).end()
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
const port = (server.address() as { port: number }).port

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}
const ctx = { actor: 'system:bench' }
const app = (i: number) => `bench${i}`

async function until(what: string, fn: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

try {
  await projector.start()
  await store.append(
    streamId('user', 'bench'),
    [{ type: 'UserRegistered', data: { username: 'bench', email: 'bench@example.com', passwordHash: 'x', admin: false } }],
    {
      ...ctx,
      expectedVersion: 0,
    },
  )
  for (let i = 0; i < HOOKS; i++) {
    await store.append(streamId('app', app(i)), [{ type: 'AppCreated', data: { app: app(i), owner: 'bench' } }], { ...ctx, expectedVersion: 0 })
    const id = `hk_${i.toString(16).padStart(16, '0')}`
    await runCommand(
      { store, pool },
      {
        stream: streamId('hook', id),
        decider: hookDecider,
        command: {
          type: 'AddHook',
          id,
          url: `http://127.0.0.1:${port}/hook/${i}`,
          scope: app(i),
          events: ['ConfigSet'],
          owner: 'bench',
          secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        },
        ctx,
        waitFor: [],
      },
    )
  }
  await waitFor(pool, await store.lastSeq(), { timeoutMs: 60_000 })
  webhooks = new Webhooks({
    store,
    pool,
    log,
    policy: outboundPolicy({ ...cfg, outboundAllow: [...cfg.outboundAllow, ...parseOutboundAllow(`127.0.0.1:${port}`)] }),
  })
  await webhooks.start()
  console.log(`${HOOKS} hooks, one app each, a local subscriber on 127.0.0.1:${port}`)

  const versions = new Map<number, number>()
  const append = async (n: number) => {
    const i = n % HOOKS
    const t0 = performance.now()
    const res = await store.append(streamId('app', app(i)), [{ type: 'ConfigSet', data: { app: app(i), values: { N: String(n) } } }], {
      ...ctx,
      expectedVersion: 'any',
    })
    const t1 = performance.now()
    sentAt.set(res.events[0]!.id, t1)
    appendMs.push(t1 - t0)
    versions.set(i, res.lastSeq)
  }

  // Warm-up: one event per hook (their consumers are made), not counted.
  await Promise.all(Array.from({ length: HOOKS }, (_, n) => append(n)))
  await until('the warm-up deliveries', () => received >= HOOKS, 60_000)
  // Each hook read its first event on its own durable consumer, then went live on the shared tail and closed that
  // consumer (confirming its last ack with the server): a start-up cost, let pass before measuring.
  await new Promise((r) => setTimeout(r, 3_000))
  slow.length = 0
  latencies.length = 0
  appendMs.length = 0
  timed.length = 0
  received = 0

  // Steady: RATE events/s for STEADY_MS, paced in 10 ms slots.
  const total = Math.round((RATE * STEADY_MS) / 1000)
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  const pending: Promise<void>[] = []
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    pending.push(append(HOOKS + n))
  }
  await Promise.all(pending)
  await until('every steady delivery', () => received >= total, 120_000)
  const steadySecs = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  const settled = timed.filter(([at]) => at - started > 10_000).map(([, ms]) => ms)
  console.log(
    `steady ${RATE} events/s for ${STEADY_MS / 1000} s: ${received} delivered, ${(received / steadySecs).toFixed(0)} events/s; latency p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${pct(latencies, 100).toFixed(1)} ms (goal p99 <= ${TARGET.p99Ms} ms); after the first 10 s: p50 ${pct(settled, 50).toFixed(1)} ms, p99 ${pct(settled, 99).toFixed(1)} ms; from the append's acknowledgement (the append itself: p50 ${pct(appendMs, 50).toFixed(1)} ms, p99 ${pct(appendMs, 99).toFixed(1)} ms); this process used ${(((cpu.user + cpu.system) / 1e6 / steadySecs) * 100).toFixed(0)}% of a core`,
  )

  if (process.env.BENCH_DEBUG) {
    const bySecond = new Map<string, number>()
    for (const x of slow) bySecond.set(x.split('.')[0]!, (bySecond.get(x.split('.')[0]!) ?? 0) + 1)
    console.log(`late deliveries by second: ${[...bySecond].map(([sec, n]) => `${sec}s:${n}`).join(' ')}`)
  }

  // Burst: BURST_EVENTS appended as fast as 64 writers can, delivered by the 100 hooks.
  latencies.length = 0
  received = 0
  const b0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < BURST_EVENTS) await append(1_000_000 + next++)
    }),
  )
  const appendSecs = (performance.now() - b0) / 1000
  await until('every burst delivery', () => received >= BURST_EVENTS, 300_000)
  const burstSecs = (performance.now() - b0) / 1000
  console.log(
    `burst of ${BURST_EVENTS}: appended in ${appendSecs.toFixed(1)} s, delivered ${(BURST_EVENTS / burstSecs).toFixed(0)} events/s; latency p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`,
  )
} finally {
  await webhooks?.stop().catch(() => {})
  await projector.stop().catch(() => {})
  await store.destroy().catch(() => {})
  await store.close().catch(() => {})
  await pool.end().catch(() => {})
  server.closeAllConnections()
  server.close()
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((err) => console.error(`could not drop ${dbName}: ${err.message}`))
  await admin.end()
}
