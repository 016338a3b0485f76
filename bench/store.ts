/**
 * The store benchmark (`npm run bench:store`), against the running platform (`make up`):
 *
 * - put and get throughput of 1 MiB objects (sequential, and 8 at once) and 64 MiB objects
 *   (multipart, 8 MiB parts, 4 at once) on the platform's S3 endpoint;
 * - backup and restore time of a read-model database built from 100,000 events (its own namespace
 *   and database on the platform's NATS and Postgres, every projection of the platform), and the
 *   export and import of that event log;
 * - a push of an image with a 50 MB layer to the platform's registry (whose storage is the store),
 *   median of 3, each push a new layer.
 *
 * Where: what `make up` wrote to $WHARF_HOME/wharf.env (variables in the environment win). It
 * removes what it wrote (objects, backups, exports, database, stream, images and their blobs).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { loadConfig, registryHeaders, registryLogin } from '../core/config.js'
import { DockerEngine, dockerClient } from '../core/engine/docker.js'
import { createLogger } from '../core/log.js'
import { BUCKETS, s3Client, s3ObjectStores, S3ObjectStore } from '../core/objectstore/index.js'
import { noise } from '../core/objectstore/objectstore.contract.js'
import { withPlatformEnv } from '../core/platform-env.js'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, streamId, type NewEvent } from '../events/index.js'
import { Projector, wharfProjections } from '../projections/index.js'
import { pushImage } from '../core/engine/images.js'
import { createBackup, exportEvents, importEvents, restoreBackup, type BackupDeps, type EventLogDeps } from '../services/store/index.js'
import { median } from './common.js'

const cfg = loadConfig(withPlatformEnv(process.env))
if (!cfg.s3.accessKey) throw new Error('no store to measure: run `make up` first (or set WHARF_S3_ENDPOINT and its keys)')
if (!cfg.databaseUrl) throw new Error('no Postgres to measure against: run `make up` first (or set WHARF_DATABASE_URL)')
const DATABASE_URL = cfg.databaseUrl
const MiB = 1024 * 1024
const EVENTS = 100_000
const APPS = 1_000
const log = createLogger({ level: 'silent' })

const suffix = `${process.pid}_${Date.now().toString(36)}`
const figures: [string, string][] = []
const figure = (name: string, value: string) => {
  figures.push([name, value])
  console.error(`  ${name}: ${value}`)
}
const rate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now()
  const v = await fn()
  return [v, performance.now() - t0]
}

const client = s3Client(cfg.s3)
const objects = s3ObjectStores(client, cfg.s3.endpoint)
const cleanups: (() => Promise<unknown>)[] = []

async function drain(stream: NodeJS.ReadableStream): Promise<number> {
  let n = 0
  for await (const c of stream) n += (c as Buffer).length
  return n
}

/** Sequential, then `parallel` at once: `count` objects of `size` each, put then got. */
async function throughput(label: string, size: number, count: number, parallel: number): Promise<void> {
  const store = new S3ObjectStore({ client, bucket: BUCKETS.backups, partSize: 8 * MiB, queueSize: 4 })
  const prefix = `bench-store-${suffix}/${label}/`
  cleanups.push(async () => {
    for await (const o of store.list(prefix)) await store.delete(o.key)
  })
  const body = size <= 8 * MiB ? await drainToBuffer(noise(size, label)) : undefined
  const one = (i: number) => store.put(`${prefix}${i}`, body ?? noise(size, `${label}${i}`))
  // Warm-up: connections open, code paths compiled.
  await one(-1)
  const [, putMs] = await timed(async () => {
    for (let i = 0; i < count; i++) await one(i)
  })
  const [, getMs] = await timed(async () => {
    for (let i = 0; i < count; i++) await drain(await store.get(`${prefix}${i}`))
  })
  figure(`put ${label} x${count}, one at a time`, `${rate(size * count, putMs)} (${(putMs / count).toFixed(1)} ms each)`)
  figure(`get ${label} x${count}, one at a time`, `${rate(size * count, getMs)} (${(getMs / count).toFixed(1)} ms each)`)
  if (parallel > 1) {
    const [, pputMs] = await timed(() => Promise.all(Array.from({ length: count }, (_, i) => limit(parallel, () => one(count + i)))))
    const [, pgetMs] = await timed(() =>
      Promise.all(Array.from({ length: count }, (_, i) => limit(parallel, async () => drain(await store.get(`${prefix}${count + i}`))))),
    )
    figure(`put ${label} x${count}, ${parallel} at once`, rate(size * count, pputMs))
    figure(`get ${label} x${count}, ${parallel} at once`, rate(size * count, pgetMs))
  }
}

async function drainToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

let active = 0
const waiting: (() => void)[] = []
/** Runs `fn` when fewer than `n` run. */
async function limit<T>(n: number, fn: () => Promise<T>): Promise<T> {
  while (active >= n) await new Promise<void>((r) => waiting.push(r))
  active++
  try {
    return await fn()
  } finally {
    active--
    waiting.shift()?.()
  }
}

/** A database of its own on the platform's Postgres, dropped at the end. */
async function benchDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(DATABASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}

async function eventStore(namespace: string): Promise<JetStreamEventStore> {
  const store = await JetStreamEventStore.connect({
    servers: cfg.natsUrl,
    catalogue: wharfCatalogue(),
    subjects: new EventSubjects(namespace),
    name: 'wharf-bench-store',
  })
  cleanups.push(async () => {
    await store.destroy()
    await store.close()
  })
  return store
}

/** 100,000 events over 1,000 apps (AppCreated, then ConfigSet), appended 256 streams at a time. */
async function fill(store: JetStreamEventStore): Promise<number> {
  let next = 0
  let last = 0
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < EVENTS) {
        const n = next++
        const app = `app${n % APPS}`
        const stream = streamId('app', app)
        const first = n < APPS
        const ev: NewEvent = first
          ? { type: 'AppCreated', data: { app, owner: 'bench' } }
          : { type: 'ConfigSet', data: { app, values: { [`K${n % 50}`]: String(n) } } }
        // Each app's first event is n < 1000: it is appended before that app's later ones are tried.
        for (;;) {
          try {
            const version = first ? 0 : await store.streamVersion(stream)
            if (!first && version === 0) {
              await new Promise((r) => setTimeout(r, 1))
              continue
            }
            last = Math.max(last, (await store.append(stream, [ev], { actor: 'user:bench', expectedVersion: version })).lastSeq)
            break
          } catch (err) {
            if ((err as { code?: string }).code !== 'WHARF_CONFLICT') throw err
          }
        }
      }
    }),
  )
  return last
}

async function backupFigures(): Promise<void> {
  const namespace = `benchstore_${suffix}`.toLowerCase()
  const store = await eventStore(namespace)
  const databaseUrl = await benchDatabase(`benchstore_${suffix}`.toLowerCase())
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 })
  cleanups.push(() => pool.end())
  const projector = new Projector({ store, pool, projections: wharfProjections(), log })
  await projector.start()
  cleanups.push(() => projector.stop())
  const [last, fillMs] = await timed(() => fill(store))
  await projector.waitFor(last, { timeoutMs: 600_000 })
  figure(`${EVENTS} events appended and projected (setup)`, secs(fillMs))
  const { rows } = await pool.query<{ size: string }>('SELECT pg_size_pretty(pg_database_size(current_database())) AS size')

  const deps: BackupDeps = {
    pool,
    databaseUrl,
    store,
    objects: objects.backups,
    endpoint: cfg.s3.endpoint,
    namespace,
    log,
    projections: wharfProjections().map((p) => p.name),
    keep: 10,
  }
  cleanups.push(async () => {
    for await (const o of objects.backups.list(`${namespace}/`)) await objects.backups.delete(o.key)
  })
  const [m, backupMs] = await timed(() => createBackup(deps, { trigger: 'manual', actor: 'user:bench' }))
  figure(`backup of the read models of ${EVENTS} events (database ${rows[0]!.size})`, `${secs(backupMs)} (dump ${(m.dump.bytes / MiB).toFixed(1)} MiB)`)
  const [, restoreMs] = await timed(() => restoreBackup(deps, m.id, { actor: 'user:bench' }))
  figure('restore of that backup (checked, replaced, caught up)', secs(restoreMs))

  const el: EventLogDeps = { store, catalogue: wharfCatalogue(), objects: objects.events, endpoint: cfg.s3.endpoint, namespace, log }
  cleanups.push(async () => {
    for await (const o of objects.events.list(`${namespace}/`)) await objects.events.delete(o.key)
  })
  const [exp, exportMs] = await timed(() => exportEvents(el, { actor: 'user:bench' }))
  figure(`export of the event log (${exp.events} events)`, `${secs(exportMs)} (${(exp.ndjson.bytes / MiB).toFixed(1)} MiB of NDJSON)`)
  const target = await eventStore(`${namespace}_imp`)
  const [imp, importMs] = await timed(() => importEvents({ ...el, store: target }, exp.id, { namespace }))
  figure(`import of that export into an empty event log`, `${secs(importMs)} (${Math.round(imp.imported / (importMs / 1000))} events/s)`)
}

async function pushFigures(): Promise<void> {
  if (!cfg.dockerHost) {
    figure('registry push of a 50 MB layer', 'skipped: no Docker engine (WHARF_DOCKER_HOST)')
    return
  }
  const docker = dockerClient(cfg.dockerHost)
  const registry = `127.0.0.1:${cfg.ports.registry}`
  const repo = `bench-store-${suffix}`.toLowerCase().replaceAll('_', '-')
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-layer-'))
    const ref = `${registry}/${repo}:${i}`
    try {
      writeFileSync(join(dir, 'Dockerfile'), `FROM busybox\nRUN echo ${suffix}-${i} > /id && dd if=/dev/urandom of=/payload bs=1M count=50 2>/dev/null\n`)
      const stream = await docker.buildImage({ context: dir, src: ['Dockerfile'] }, { t: ref, labels: { 'wharf.bench': 'true' } })
      await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))))
      const [digest, ms] = await timed(() => pushImage(new DockerEngine(docker, registryLogin(cfg)), ref))
      times.push(ms)
      cleanups.push(() => deleteFromRegistry(registry, repo, digest, registryHeaders(cfg.registryAuth)))
    } finally {
      rmSync(dir, { recursive: true, force: true })
      cleanups.push(() =>
        docker
          .getImage(ref)
          .remove({ force: true })
          .catch(() => {}),
      )
    }
  }
  figure('registry push of a 50 MB layer (median of 3)', `${secs(median(times))} (${rate(50 * MiB, median(times))})`)
}

/** Deletes a pushed image's manifest and layers through the registry API (storage delete is enabled). */
async function deleteFromRegistry(registry: string, repo: string, digest: string, auth: Record<string, string>): Promise<void> {
  const res = await request(`http://${registry}/v2/${repo}/manifests/${digest}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  })
  const manifest = (await res.body.json()) as { layers?: { digest: string }[] }
  for (const l of manifest.layers ?? [])
    await (await request(`http://${registry}/v2/${repo}/blobs/${l.digest}`, { method: 'DELETE', headers: auth })).body.dump()
  await (await request(`http://${registry}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', headers: auth })).body.dump()
}

let failed = false
try {
  console.error(`store: ${cfg.s3.endpoint}; Postgres and NATS of the platform; registry 127.0.0.1:${cfg.ports.registry}`)
  await throughput('1MiB', MiB, 64, 8)
  await throughput('64MiB', 64 * MiB, 4, 1)
  await backupFigures()
  await pushFigures()
} catch (err) {
  failed = true
  console.error(`bench failed: ${(err as Error).message}`)
} finally {
  for (const c of cleanups.reverse()) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`))
  client.destroy()
}
const w = Math.max(...figures.map(([n]) => n.length))
console.log(`\n${'figure'.padEnd(w)}  measured`)
for (const [n, v] of figures) console.log(`${n.padEnd(w)}  ${v}`)
process.exit(failed ? 1 : 0)
