/**
 * The pure part of logspout: Docker's log stream (`follow`, `timestamps`) -> lines with positions.
 *
 * Without a TTY the engine multiplexes stdout and stderr in frames (8-byte header: stream, 0, 0, 0,
 * 32-bit big-endian size); each frame is one log message, `<RFC3339Nano timestamp> <text>`. A message
 * without a trailing LF is a part of a longer line (the json-file driver splits at 16 KiB; the parts
 * share the first one's timestamp); parts are joined, up to `maxLineBytes`.
 *
 * A position is `[timestamp, k]`: the k-th message with that timestamp. Messages at or before a
 * position are skipped, so a reader started again with Docker's `since` = the position's timestamp
 * (inclusive) neither repeats nor drops a line. (One exception, as Docker's `since` has it too: the
 * parts of a long line on one stream share their first part's timestamp, so when the other stream
 * writes between two parts, timestamps go back; a restart exactly there loses the line's later parts.)
 */
import { MAX_LINE_BYTES, sanitizeLine } from '../../logs/index.js'

/** Where a container's log stands: the Docker timestamp of the last message taken and how many messages at that timestamp were taken. */
export type Position = [time: string, k: number]

export interface ReadLine {
  time: string
  stream: 0 | 1
  text: string
  /** The position after this line. */
  pos: Position
}

const HEADER = 8
/** RFC3339Nano as the engine writes it (`2024-05-01T12:00:00.123456789Z`; Go trims trailing zeros of the fraction). */
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/

/** A Docker timestamp with the fraction padded to 9 digits, so that positions compare as strings. */
export function fixedTime(ts: string): string | undefined {
  const m = TIMESTAMP.exec(ts)
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z` : undefined
}

/** Docker's `since` for a position: `<unix seconds>.<nanoseconds>`. */
export function sinceOf(pos: Position | undefined): string | undefined {
  if (!pos) return undefined
  const m = TIMESTAMP.exec(pos[0])
  if (!m) return undefined
  return `${Math.floor(Date.parse(`${m[1]}Z`) / 1000)}.${(m[2] ?? '').padEnd(9, '0')}`
}

/** Whether position `a` is after `b` (undefined is before everything). */
export function after(a: Position, b: Position | undefined): boolean {
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
  #lastTime = ''
  #k = 0
  readonly #partial: [Partial | undefined, Partial | undefined] = [undefined, undefined]
  /** Messages that were not `<timestamp> <text>` (skipped). */
  malformed = 0

  /** Lines are handed here as they complete. */
  readonly #onLine: (line: ReadLine) => void
  /** Skip messages up to and including this position (where the last reader stopped). */
  #skipTo: Position | undefined
  readonly #opts: { tty?: boolean; maxLineBytes?: number }

  constructor(onLine: (line: ReadLine) => void, skipTo: Position | undefined, opts: { tty?: boolean; maxLineBytes?: number } = {}) {
    this.#onLine = onLine
    this.#skipTo = skipTo
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
   * otherwise (the connection dropped) unfinished parts are forgotten and read again from the position.
   */
  end(complete: boolean): void {
    for (const s of [0, 1] as const) {
      const p = this.#partial[s]
      this.#partial[s] = undefined
      if (p && complete) this.#emit(s, p, this.#lastTime, this.#k)
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
    // The position never goes back: stdout and stderr are stamped apart, so a message of one stream can
    // carry an earlier timestamp than one of the other already taken. Were the position to follow it, a
    // restart (Docker's `since` = its timestamp) would read that later-stamped message again.
    if (time === this.#lastTime) this.#k++
    else if (time > this.#lastTime) {
      this.#lastTime = time
      this.#k = 1
    }
    if (!after([time, this.#k], this.#skipTo)) return
    this.#skipTo = undefined
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
      this.#emit(stream, p, this.#lastTime, this.#k)
    } else this.#partial[stream] = p
  }

  #emit(stream: 0 | 1, p: Partial, time: string, k: number): void {
    const raw = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts)
    this.#onLine({ time: p.time, stream, text: sanitizeLine(raw, this.#opts.maxLineBytes ?? MAX_LINE_BYTES, p.dropped), pos: [time, k] })
  }
}
