/**
 * The pure part of logspout: Docker's log stream (`follow`, `timestamps`) -> lines with positions.
 *
 * Without a TTY the engine multiplexes stdout and stderr in frames (8-byte header: stream, 0, 0, 0,
 * 32-bit big-endian size); each frame is one log message, `<RFC3339Nano timestamp> <text>`. A message
 * without a trailing LF is a part of a longer line (the json-file driver splits at 16 KiB; the parts
 * share the first one's timestamp); parts are joined, up to `maxLineBytes`.
 *
 * A position is `[timestamp, k]`: the k-th message of one stream with that timestamp. The engine stamps
 * stdout and stderr apart (a copier each), so in the log's order one stream's timestamps never go back
 * but the two interleave out of order by a little. A container's place is therefore one position per
 * stream, of the last line handed on: a reader started again with Docker's `since` a margin before the
 * earlier of the two skips, per stream, what is at or before that stream's position, so it neither
 * repeats nor drops a line, whichever stream wrote last.
 */
import { MAX_LINE_BYTES, sanitizeLine } from '../../logs/index.js'

/** One stream's position: the Docker timestamp of the last message taken and how many messages of that stream at that timestamp were taken. */
export type Position = [time: string, k: number]

/** Where a container's log stands: the position of each stream (`[stdout, stderr]`), null before its first line. */
export type Place = [out: Position | null, err: Position | null]

export interface ReadLine {
  time: string
  stream: 0 | 1
  text: string
  /** The place after this line. */
  pos: Place
}

const HEADER = 8
/** RFC3339Nano as the engine writes it (`2024-05-01T12:00:00.123456789Z`; Go trims trailing zeros of the fraction). */
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/
/** How far before the earlier stream's position a restart reads (the streams' stamps are out of order by far less). */
const SINCE_MARGIN_S = 1

/** A Docker timestamp with the fraction padded to 9 digits, so that positions compare as strings. */
export function fixedTime(ts: string): string | undefined {
  const m = TIMESTAMP.exec(ts)
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z` : undefined
}

/**
 * A place as stored in a batch: `[out, err]`, or a single position of batches written before the
 * streams were kept apart (both streams stood there).
 */
export function placeOf(stored: unknown): Place | undefined {
  const isPos = (p: unknown): p is Position => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'number'
  if (isPos(stored)) return [stored, stored]
  if (Array.isArray(stored) && stored.length === 2 && stored.every((p) => p === null || isPos(p))) return stored as Place
  return undefined
}

/** Docker's `since` for a place: `<unix seconds>.<nanoseconds>`, a margin before the earlier stream's position. */
export function sinceOf(place: Place | undefined): string | undefined {
  const times = (place ?? []).flatMap((p) => (p ? [p[0]] : [])).sort()
  const m = times[0] ? TIMESTAMP.exec(times[0]) : null
  if (!m) return undefined
  const seconds = Math.max(0, Math.floor(Date.parse(`${m[1]}Z`) / 1000) - SINCE_MARGIN_S)
  return `${seconds}.${(m[2] ?? '').padEnd(9, '0')}`
}

/** Whether position `a` is after `b` (undefined or null is before everything). */
export function after(a: Position, b: Position | null | undefined): boolean {
  return !b || a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])
}

interface Partial {
  parts: Buffer[]
  bytes: number
  dropped: number
  time: string
}

export class LogReader {
  #buf: Buffer = Buffer.alloc(0)
  /** Per stream, the last message's timestamp and how many of that stream carried it. */
  readonly #last: [Position, Position] = [
    ['', 0],
    ['', 0],
  ]
  /** The place of the lines handed on (parts of an unfinished line are not in it). */
  readonly #done: Place
  readonly #partial: [Partial | undefined, Partial | undefined] = [undefined, undefined]
  /** Messages that were not `<timestamp> <text>` (skipped). */
  malformed = 0

  /** Lines are handed here as they complete. */
  readonly #onLine: (line: ReadLine) => void
  /** Per stream, skip messages up to and including this position (where the last reader stopped). */
  readonly #skipTo: Place
  readonly #opts: { tty?: boolean; maxLineBytes?: number }

  constructor(onLine: (line: ReadLine) => void, skipTo: Place | undefined, opts: { tty?: boolean; maxLineBytes?: number } = {}) {
    this.#onLine = onLine
    this.#skipTo = skipTo ? [skipTo[0], skipTo[1]] : [null, null]
    this.#done = [this.#skipTo[0], this.#skipTo[1]]
    this.#opts = opts
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    if (this.#opts.tty) {
      // A TTY has no frames: a message per line, CRLF-terminated.
      let lf
      while ((lf = this.#buf.indexOf(0x0a)) >= 0) {
        this.#message(0, this.#buf.subarray(0, lf + 1))
        this.#buf = this.#buf.subarray(lf + 1)
      }
      return
    }
    while (this.#buf.length >= HEADER) {
      const size = this.#buf.readUInt32BE(4)
      if (this.#buf.length < HEADER + size) return
      const stream = this.#buf[0] === 2 ? 1 : 0
      this.#message(stream, this.#buf.subarray(HEADER, HEADER + size))
      this.#buf = this.#buf.subarray(HEADER + size)
    }
  }

  /**
   * The stream ended. `complete`: the container is gone, so a last line without LF is a line;
   * otherwise (the connection dropped) unfinished parts are forgotten and read again from the place.
   */
  end(complete: boolean): void {
    for (const s of [0, 1] as const) {
      const p = this.#partial[s]
      this.#partial[s] = undefined
      if (p && complete) this.#emit(s, p)
    }
    this.#buf = Buffer.alloc(0)
  }

  #message(stream: 0 | 1, msg: Buffer): void {
    const sp = msg.indexOf(0x20)
    const time = sp > 0 ? fixedTime(msg.subarray(0, sp).toString('latin1')) : undefined
    if (!time) {
      this.malformed++
      return
    }
    const last = this.#last[stream]
    if (time === last[0]) last[1]++
    else {
      last[0] = time
      last[1] = 1
    }
    if (!after(last, this.#skipTo[stream])) return
    this.#skipTo[stream] = null
    let text = msg.subarray(sp + 1)
    const complete = text.length > 0 && text[text.length - 1] === 0x0a
    if (complete) text = text.subarray(0, text.length - 1)
    const max = this.#opts.maxLineBytes ?? MAX_LINE_BYTES
    const p = this.#partial[stream] ?? { parts: [], bytes: 0, dropped: 0, time }
    const room = max + 1 - p.bytes
    if (room >= text.length) {
      p.parts.push(text)
      p.bytes += text.length
    } else {
      if (room > 0) p.parts.push(text.subarray(0, room))
      p.bytes += Math.max(room, 0)
      p.dropped += text.length - Math.max(room, 0)
    }
    if (complete) {
      this.#partial[stream] = undefined
      this.#emit(stream, p)
    } else this.#partial[stream] = p
  }

  #emit(stream: 0 | 1, p: Partial): void {
    const raw = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts)
    this.#done[stream] = [this.#last[stream][0], this.#last[stream][1]]
    const pos: Place = [this.#done[0], this.#done[1]]
    this.#onLine({ time: p.time, stream, text: sanitizeLine(raw, this.#opts.maxLineBytes ?? MAX_LINE_BYTES, p.dropped), pos })
  }
}
