/**
 * How the controller asks the logger, over NATS request/reply (`<ns>.logger.recent`, `.history`,
 * answered by one logger of a queue group): the request is JSON; the answer is one or more JSON chunks
 * of lines, then an empty message. The live tail needs no logger: the controller reads the log stream
 * itself, from the sequence the `recent` answer gave.
 */
import { WharfError, type ErrorCode } from '../core/errors.js'
import { compareIds, type LogLine, linesOf } from './line.js'
import type { LiveFeed, LogStream } from './stream.js'

/** What `recent` can filter on. */
export interface LineFilter {
  /** Only lines of this process type (`web`). */
  type?: string
}

export function matches(l: LogLine, f: LineFilter): boolean {
  return f.type === undefined || l.type === f.type
}

/** Most lines one request may ask for. */
export const MAX_REQUEST_LINES = 10_000

export interface RecentRequest {
  app: string
  lines: number
  type?: string
}

export interface HistoryRequest {
  app: string
  /** RFC 3339. */
  since: string
  limit: number
  type?: string
}

/** One chunk of an answer. `seq`: the stream sequence the logger's lines go up to (in the first chunk). */
export interface AnswerChunk {
  lines?: LogLine[]
  seq?: number
  error?: { code: ErrorCode; message: string }
}

/** Bytes of JSON per answer chunk (NATS takes 1 MiB a message). */
export const CHUNK_BYTES = 256 * 1024
/** How long the controller waits for the logger, ms. */
const ANSWER_TIMEOUT_MS = 10_000

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The chunks of an answer of `lines` (always at least one, the first with `seq`). */
export function chunksOf(lines: readonly LogLine[], seq?: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let chunk: LogLine[] = []
  let bytes = 0
  const push = () => {
    out.push(encoder.encode(JSON.stringify(out.length === 0 && seq !== undefined ? { seq, lines: chunk } : { lines: chunk })))
    chunk = []
    bytes = 0
  }
  for (const l of lines) {
    const size = l.text.length + 200
    if (bytes + size > CHUNK_BYTES && chunk.length) push()
    chunk.push(l)
    bytes += size
  }
  push()
  return out
}

/** What the controller uses: the logger's answers, and the live tail from the stream. */
export class LoggerClient {
  constructor(readonly logs: LogStream) {}

  async #ask(subject: string, body: unknown): Promise<{ seq: number | undefined; lines: LogLine[] }> {
    let seq: number | undefined
    const lines: LogLine[] = []
    let answered = false
    try {
      const replies = await this.logs.nc.requestMany(subject, encoder.encode(JSON.stringify(body)), { strategy: 'sentinel', maxWait: ANSWER_TIMEOUT_MS })
      for await (const m of replies) {
        if (m.data.length === 0) break
        answered = true
        const chunk = JSON.parse(decoder.decode(m.data)) as AnswerChunk
        if (chunk.error) throw new WharfError(chunk.error.code, chunk.error.message)
        if (chunk.seq !== undefined) seq = chunk.seq
        lines.push(...(chunk.lines ?? []))
      }
    } catch (err) {
      if (err instanceof WharfError) throw err
      throw new WharfError('WHARF_UNAVAILABLE', 'the logger does not answer', { cause: err })
    }
    if (!answered) throw new WharfError('WHARF_UNAVAILABLE', 'the logger does not answer')
    return { seq, lines }
  }

  /** The newest `lines` lines of an app (oldest first), and the stream sequence they go up to. */
  async recent(req: RecentRequest): Promise<{ seq: number; lines: LogLine[] }> {
    const res = await this.#ask(this.logs.subjects.requests.recent, req)
    return { seq: res.seq ?? 0, lines: res.lines }
  }

  /** Lines of an app from `since` on (archives and the stream), oldest first, at most `limit`. */
  async history(req: HistoryRequest): Promise<LogLine[]> {
    return (await this.#ask(this.logs.subjects.requests.history, req)).lines
  }

  /** The app's lines stored after `afterSeq`, as they come, until closed. */
  async tail(app: string, afterSeq: number, filter: LineFilter): Promise<{ lines: AsyncIterable<LogLine[]>; close(): Promise<void> }> {
    const feed: LiveFeed = await this.logs.follow(this.logs.subjects.appFilter(app), { fromSeq: afterSeq + 1 })
    return {
      lines: (async function* () {
        for await (const b of feed) {
          const lines = linesOf(b.batch, b.seq).filter((l) => matches(l, filter))
          if (lines.length) yield lines
        }
      })(),
      close: () => feed.close(),
    }
  }
}

/** Lines of two sources (archives, stream) as one: each id once, by time, then stream order. */
export function mergeLines(a: readonly LogLine[], b: readonly LogLine[]): LogLine[] {
  const byId = new Map<string, LogLine>()
  for (const l of a) byId.set(l.id, l)
  for (const l of b) byId.set(l.id, l)
  return [...byId.values()].sort((x, y) => (x.time < y.time ? -1 : x.time > y.time ? 1 : compareIds(x.id, y.id)))
}
