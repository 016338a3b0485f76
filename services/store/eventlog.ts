/**
 * The whole event log to the store and back: `exportEvents` writes every event, oldest first, as one
 * JSON object per line (`<namespace>/<id>.ndjson` in the events bucket) and its manifest last;
 * `importEvents` appends an export to an empty platform, keeping every event's id, time, actor,
 * correlation and position, so the projections there build the same read models. The events of one
 * commit (one append: they share a `seq`, and carry `index` and `commitSize`) are exported as lines in
 * a row and imported as one append again, so that a commit stays all or nothing.
 *
 * Events are exported as read (upcast to the newest version of their type), so the importing Wharf
 * validates each against its catalogue as any append would.
 */
import { Readable } from 'node:stream'
import { createInterface } from 'node:readline'
import { EXPORT_FORMAT, type ExportManifest, type ImportResult } from '../../core/backups.js'
import { isWharfError, WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStore } from '../../core/objectstore/index.js'
import { endsCommit, type Catalogue, type EventContext, type EventStore, type RecordedEvent } from '../../events/index.js'
import { BACKUPS_STREAM, platformIdentity } from './backups.js'
import { Digest, listManifests, readText, storeError } from './objects.js'
import { keysOf, newObjectId, parseExportManifest } from './manifest.js'

export interface EventLogDeps {
  store: EventStore
  catalogue: Catalogue
  /** The events bucket. */
  objects: ObjectStore
  endpoint: string
  namespace: string
  log: Logger
}

/** Writes the log as it is now to the store; answers the manifest. A failure leaves no manifest. */
export async function exportEvents(deps: EventLogDeps, ctx: EventContext): Promise<ExportManifest> {
  const started = Date.now()
  const id = newObjectId()
  const keys = keysOf(deps.namespace, id, 'ndjson')
  const { platform, lastSeq } = await platformIdentity(deps.store)
  if (!platform) throw new WharfError('WHARF_INVALID', 'nothing to export: the event log is empty')
  let count = 0
  let commits = 0
  let last = 0
  const store = deps.store
  const lines = Readable.from(
    (async function* () {
      for await (const e of store.readAll(1)) {
        if (e.seq > lastSeq) break
        count++
        if (endsCommit(e)) commits++
        last = e.seq
        yield `${JSON.stringify(e)}\n`
      }
    })(),
  )
  const digest = new Digest()
  lines.on('error', (err) => digest.destroy(err))
  try {
    await deps.objects.put(keys.data, lines.pipe(digest), { contentType: 'application/x-ndjson' })
    if (commits !== lastSeq || last !== lastSeq)
      throw new WharfError('WHARF_INTERNAL', `the log read ${commits} commits up to seq ${last}, expected ${lastSeq}`)
    const manifest: ExportManifest = {
      format: EXPORT_FORMAT,
      id,
      createdAt: new Date(started).toISOString(),
      actor: ctx.actor,
      namespace: deps.namespace,
      platform,
      events: count,
      lastSeq,
      ndjson: { key: keys.data, bytes: digest.bytes, sha256: digest.hex() },
      tookMs: Date.now() - started,
    }
    await deps.objects.put(keys.manifest, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' })
    await deps.store.append(BACKUPS_STREAM, [{ type: 'EventsExported', data: { id, events: count, seq: lastSeq, bytes: digest.bytes } }], {
      ...ctx,
      expectedVersion: 'any',
    })
    deps.log.info({ export: id, events: count, bytes: digest.bytes, tookMs: manifest.tookMs, correlationId: ctx.correlationId }, 'event log exported')
    return manifest
  } catch (err) {
    await deps.objects.delete(keys.data).catch(() => {})
    throw storeError(deps.endpoint, `storing export ${id}`, err)
  }
}

/** Every complete export under `namespace` (default this platform's), newest first. */
export function listExports(deps: EventLogDeps, namespace = deps.namespace): Promise<ExportManifest[]> {
  return listManifests(deps, namespace, 'exports', parseExportManifest)
}

/** The fields every exported line has, with their types. */
const FIELDS = {
  id: 'string',
  type: 'string',
  version: 'number',
  stream: 'string',
  occurredAt: 'string',
  actor: 'string',
  correlationId: 'string',
  seq: 'number',
} as const

/**
 * Reads export `m` line by line, checking each event (shape, catalogue, seq 1, 2, 3, ... with no gap,
 * the events of a commit in a row with index 0, 1, ...) and the whole object's size and checksum;
 * calls `each` with every commit that passed. A failure is `WHARF_BACKUP_CORRUPT`.
 */
async function readExport(deps: EventLogDeps, m: ExportManifest, each: (commit: RecordedEvent[]) => Promise<void> | void): Promise<void> {
  const bad = (why: string) => new WharfError('WHARF_BACKUP_CORRUPT', `export ${m.id} is not usable: ${why}; nothing was imported`, { details: { id: m.id } })
  const digest = new Digest()
  let body: Readable
  try {
    body = await deps.objects.get(m.ndjson.key)
  } catch (err) {
    if (isWharfError(err) && err.code === 'WHARF_NOT_FOUND') throw bad('its data is missing')
    throw storeError(deps.endpoint, `reading export ${m.id}`, err)
  }
  body.on('error', (err) => digest.destroy(err))
  let seq = 0
  let lineNo = 0
  /** The commit being read: its events so far. */
  let commit: RecordedEvent[] = []
  try {
    for await (const line of createInterface({ input: body.pipe(digest), crlfDelay: Infinity })) {
      if (!line) continue
      lineNo++
      let e: RecordedEvent
      try {
        e = JSON.parse(line) as RecordedEvent
      } catch {
        throw bad(`line ${lineNo} is not JSON`)
      }
      const wrong = Object.entries(FIELDS).find(([k, type]) => typeof (e as unknown as Record<string, unknown>)[k] !== type)
      if (wrong || !('data' in e) || (e.causationId !== null && typeof e.causationId !== 'string'))
        throw bad(`line ${lineNo} is not an event (${wrong?.[0] ?? 'data'})`)
      const inCommit = e.index !== undefined || e.commitSize !== undefined
      if (inCommit && !(Number.isInteger(e.index) && Number.isInteger(e.commitSize) && e.index! >= 0 && e.index! < e.commitSize! && e.commitSize! > 1))
        throw bad(`line ${lineNo} has a wrong place in its commit`)
      const prev = commit.at(-1)
      const expected = prev ? { seq: prev.seq, index: prev.index! + 1 } : { seq: seq + 1, index: inCommit ? 0 : undefined }
      if (e.seq !== expected.seq) throw bad(`line ${lineNo} holds event seq ${e.seq}, expected ${expected.seq}`)
      if (e.index !== expected.index || (prev && (e.commitSize !== prev.commitSize || e.stream !== prev.stream)))
        throw bad(`line ${lineNo} is out of place in the commit at seq ${e.seq}`)
      try {
        deps.catalogue.validate(e)
      } catch (err) {
        throw bad(`event ${e.seq} is refused by this Wharf's catalogue: ${(err as Error).message}`)
      }
      commit.push(e)
      if (!endsCommit(e)) continue
      seq = e.seq
      const whole = commit
      commit = []
      await each(whole)
    }
  } catch (err) {
    if (isWharfError(err)) throw err
    throw storeError(deps.endpoint, `reading export ${m.id}`, err)
  }
  if (commit.length > 0) throw bad(`its last commit (seq ${commit[0]!.seq}) is cut short`)
  if (seq !== m.lastSeq) throw bad(`it holds ${seq} commits, its manifest says ${m.lastSeq}`)
  if (digest.bytes !== m.ndjson.bytes || digest.hex() !== m.ndjson.sha256) throw bad('its data does not match its checksum')
}

/**
 * Appends export `id` (of `namespace`, default this platform's) to this platform, whose log must
 * be empty, or hold exactly the first events of that same export (an import that was cut off: it
 * goes on from there). Refuses, appending nothing: `WHARF_NOT_FOUND`, `WHARF_BACKUP_CORRUPT` (the
 * whole export is read and checked first), `WHARF_CONFLICT` (the log holds other events).
 */
export async function importEvents(
  deps: EventLogDeps,
  id: string,
  opts: { namespace?: string; onProgress?: (seq: number) => void } = {},
): Promise<ImportResult> {
  const started = Date.now()
  const ns = opts.namespace ?? deps.namespace
  const keys = keysOf(ns, id, 'ndjson')
  const head = await deps.objects.head(keys.manifest).catch((err) => Promise.reject(storeError(deps.endpoint, `reading export ${id}`, err)))
  if (!head) throw new WharfError('WHARF_NOT_FOUND', `no export ${id} under ${ns}/ (wharf admin:exports lists them)`, { details: { id, namespace: ns } })
  const m = parseExportManifest(
    id,
    await readText(deps.objects, keys.manifest).catch((err) => Promise.reject(storeError(deps.endpoint, `reading export ${id}`, err))),
  )

  // What the log holds already must be the start of this export.
  const have = await deps.store.lastSeq()
  /** The id of the first event of each commit in the log. */
  const present = new Map<number, string>()
  if (have > 0) for await (const e of deps.store.readAll(1)) if ((e.index ?? 0) === 0) present.set(e.seq, e.id)
  const notEmpty = () =>
    new WharfError(
      'WHARF_CONFLICT',
      `this platform's event log is not empty (${have} events) and is not the start of export ${id}: import into a new platform`,
      {
        details: { events: have },
      },
    )
  if (have > m.lastSeq) throw notEmpty()
  // First pass: everything is checked before anything is appended.
  await readExport(deps, m, (commit) => {
    const e = commit[0]!
    if (e.seq <= have && present.get(e.seq) !== e.id) throw notEmpty()
  })
  // Second pass: append, each event expecting the position the export gives its stream's previous one,
  // so the positions (and everything a projection keeps of them) come out the same.
  const previous = new Map<string, number>()
  let imported = 0
  await readExport(deps, m, async (commit) => {
    const e = commit[0]!
    const expected = previous.get(e.stream) ?? 0
    previous.set(e.stream, e.seq)
    if (e.seq <= have) return
    const events = commit.map((c) => ({ id: c.id, type: c.type, version: c.version, occurredAt: c.occurredAt, data: c.data }))
    const res = await deps.store.append(e.stream, events, {
      actor: e.actor,
      correlationId: e.correlationId,
      causationId: e.causationId,
      expectedVersion: expected,
    })
    if (res.lastSeq !== e.seq) {
      throw new WharfError(
        'WHARF_CONFLICT',
        `event ${e.seq} of export ${id} landed at seq ${res.lastSeq}: something else writes to this platform; import stopped (run it again to go on)`,
      )
    }
    imported += commit.length
    if (e.seq % 10_000 === 0) opts.onProgress?.(e.seq)
  })
  deps.log.info({ export: id, imported, resumedAfter: have, tookMs: Date.now() - started }, 'event log imported')
  return { manifest: m, imported, lastSeq: m.lastSeq, tookMs: Date.now() - started }
}
