/**
 * Log archives: each app's lines of each hour, once the hour is over (and a grace period for late
 * lines), go to the store as one gzip object, `<app>/<YYYY-MM-DD>/<HH>.ndjson.gz` (a line of JSON per
 * log line, in stream order), and are read back for `wharf logs --since`.
 *
 * The logger tells the archiver which (app, hour) the stream holds, and up to which sequence (it reads
 * the whole stream on start, so after a restart the archiver knows again). An hour is written from the
 * stream. Lines of an hour that arrive after it was written (a logspout catching up) are appended as
 * another gzip member (a gzip file may hold many: readers see one text), never rewritten.
 */
import { Readable } from 'node:stream'
import { createGunzip, createGzip } from 'node:zlib'
import { createInterface } from 'node:readline'
import type { ObjectStore } from '../../core/objectstore/index.js'
import type { Logger } from '../../core/log.js'
import { linesOf, matches, type LineFilter, type LogLine, type LogStream } from '../../logs/index.js'

const HOUR = 3_600_000

export interface ArchiverOptions {
  objects: ObjectStore
  logs: LogStream
  log: Logger
  /** How long after an hour ends it is written, ms, default 120_000 (lines written then arrive late). */
  graceMs?: number
  /** How long the stream keeps lines, ms: entries older than this are forgotten. */
  retentionMs: number
}

/** The start (ms) of the UTC hour of an RFC 3339 time. */
export function hourOf(time: string): number {
  return Math.floor(Date.parse(time) / HOUR) * HOUR
}

/** The object of an app's hour: `shop/2024-05-01/13.ndjson.gz`. */
export function archiveKey(app: string, hour: number): string {
  const iso = new Date(hour).toISOString()
  return `${app}/${iso.slice(0, 10)}/${iso.slice(11, 13)}.ndjson.gz`
}

interface Entry {
  app: string
  hour: number
  minSeq: number
  maxSeq: number
  /** The highest sequence in the object (undefined: not written by this process). */
  archivedMaxSeq: number | undefined
  /** Whether the store was asked if the object exists (for entries learnt by replay). */
  checked: boolean
  /** When a line of it last arrived (ms): the stream forgets lines by when they arrived, so the index does too. */
  touchedAt: number
}

export class Archiver {
  readonly #index = new Map<string, Entry>()
  readonly stats = { objects: 0, lines: 0, failures: 0, lastError: undefined as string | undefined }
  #busy: Promise<void> = Promise.resolve()

  readonly #opts: ArchiverOptions

  constructor(opts: ArchiverOptions) {
    this.#opts = opts
  }

  /** Records that `lines` (of one app, stored at `seq`) are in the stream. */
  note(app: string, lines: readonly LogLine[], seq: number): void {
    let last = -1
    for (const l of lines) {
      const hour = hourOf(l.time)
      if (hour === last || Number.isNaN(hour)) continue
      last = hour
      const key = `${app} ${hour}`
      const e = this.#index.get(key)
      if (e) {
        e.minSeq = Math.min(e.minSeq, seq)
        e.maxSeq = Math.max(e.maxSeq, seq)
        e.touchedAt = Date.now()
      } else this.#index.set(key, { app, hour, minSeq: seq, maxSeq: seq, archivedMaxSeq: undefined, checked: false, touchedAt: Date.now() })
    }
  }

  /**
   * Forgets `app` and deletes its archives (after `apps:destroy`): an app created again under that
   * name is a new app and reads none of them. Waits for a running tick, so nothing is written after.
   */
  forget(app: string): Promise<number> {
    const run = this.#busy.then(async () => {
      for (const [key, e] of this.#index) if (e.app === app) this.#index.delete(key)
      const keys: string[] = []
      for await (const o of this.#opts.objects.list(`${app}/`)) keys.push(o.key)
      for (const key of keys) await this.#opts.objects.delete(key)
      return keys.length
    })
    this.#busy = run.then(
      () => {},
      () => {},
    )
    return run
  }

  /** Writes every hour that is over and has lines not yet in the store; one at a time. Answers how many objects it wrote. */
  tick(now = Date.now()): Promise<number> {
    const run = this.#busy.then(() => this.#tick(now))
    this.#busy = run.then(
      () => {},
      () => {},
    )
    return run
  }

  async #tick(now: number): Promise<number> {
    let written = 0
    const grace = this.#opts.graceMs ?? 120_000
    for (const [key, e] of this.#index) {
      if (e.hour + HOUR + grace > now) continue
      if (e.touchedAt < now - this.#opts.retentionMs && (e.archivedMaxSeq ?? 0) >= e.maxSeq) {
        this.#index.delete(key)
        continue
      }
      if (e.archivedMaxSeq !== undefined && e.archivedMaxSeq >= e.maxSeq) continue
      try {
        if (e.archivedMaxSeq === undefined && !e.checked) {
          e.checked = true
          // Learnt by replaying the stream: an object that exists was written before the restart.
          if (await this.#opts.objects.head(archiveKey(e.app, e.hour))) {
            e.archivedMaxSeq = e.maxSeq
            continue
          }
        }
        if (await this.#write(e)) written++
      } catch (err) {
        this.stats.failures++
        this.stats.lastError = (err as Error).message
        this.#opts.log.warn({ err, app: e.app, hour: new Date(e.hour).toISOString() }, 'logger: cannot archive an hour of logs; trying again later')
      }
    }
    return written
  }

  /** Writes the lines of `e` that are not in its object yet. */
  async #write(e: Entry): Promise<boolean> {
    const { logs, objects } = this.#opts
    const untilSeq = e.maxSeq
    const fromSeq = e.archivedMaxSeq === undefined ? e.minSeq : e.archivedMaxSeq + 1
    const key = archiveKey(e.app, e.hour)
    // The new lines, gzipped, in memory only as far as the upload has not taken them.
    const gz = createGzip()
    let count = 0
    const produced = (async () => {
      for await (const b of logs.read(logs.subjects.appFilter(e.app), { fromSeq, untilSeq })) {
        for (const l of linesOf(b.batch, b.seq)) {
          if (hourOf(l.time) !== e.hour) continue
          count++
          if (!gz.write(`${JSON.stringify(l)}\n`)) await new Promise((r) => gz.once('drain', r))
        }
      }
      gz.end()
    })()
    produced.catch((err: unknown) => gz.destroy(err as Error))
    const existing = e.archivedMaxSeq === undefined ? undefined : await objects.get(key)
    const body = Readable.from(
      (async function* () {
        if (existing) for await (const chunk of existing) yield chunk as Buffer
        for await (const chunk of gz) yield chunk as Buffer
      })(),
    )
    // Read and upload at once (the gzip output is taken as it comes); a failed read aborts the upload.
    await Promise.all([objects.put(key, body, { contentType: 'application/gzip' }), produced])
    e.archivedMaxSeq = untilSeq
    this.stats.objects++
    this.stats.lines += count
    return true
  }

  /** Archived lines of `app` from `since` on (whole hours from since's), filtered, at most `limit`, in stream order per hour. */
  async read(app: string, since: Date, filter: LineFilter, limit: number): Promise<LogLine[]> {
    const first = archiveKey(app, Math.floor(since.getTime() / HOUR) * HOUR)
    const keys: string[] = []
    for await (const o of this.#opts.objects.list(`${app}/`)) if (o.key >= first) keys.push(o.key)
    const out: LogLine[] = []
    const from = since.toISOString()
    for (const key of keys.sort()) {
      const lines = createInterface({ input: (await this.#opts.objects.get(key)).pipe(createGunzip()), crlfDelay: Infinity })
      for await (const text of lines) {
        if (!text) continue
        const l = JSON.parse(text) as LogLine
        if (l.time >= from && matches(l, filter)) out.push(l)
        if (out.length >= limit) {
          lines.close()
          return out
        }
      }
    }
    return out
  }

  /** Waits for a tick under way. */
  async idle(): Promise<void> {
    await this.#busy
  }
}
