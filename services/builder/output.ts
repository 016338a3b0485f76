import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { buildLogPath } from '../../core/paths.js'
import { MAX_LINE_BYTES } from '../../logs/index.js'

const KEEP = 30

/** Bounds of one build's output. */
export interface OutputOptions {
  /** The longest line shown and kept, bytes (default {@link MAX_LINE_BYTES}, 16 KiB, as logspout cuts); the rest of a line is counted, not kept. */
  maxLineBytes?: number
  /** The most output a build shows and keeps, bytes (`WHARF_BUILD_LOG_MAX`; default 16 MiB); beyond it, one note and only the last lines. */
  maxLogBytes?: number
  /**
   * Resolves when the pusher's side has taken what it was sent (after `send` answered false): the
   * engine's stream waits for it, so a build that prints faster than the pusher reads is slowed
   * down rather than buffered.
   */
  drained?: () => Promise<void>
}

/**
 * The output of one build, Heroku style: headings `-----> ...`, the build's own lines indented. Goes
 * to the pusher's terminal as it happens, to the build's log file, and keeps the last lines for
 * `BuildFailed`. Bounded: a line is cut at 16 KiB (a 300 MB line without a newline holds 16 KiB, not
 * 300 MB), the whole output at `maxLogBytes`, and `send` is waited for when it says it is full.
 */
export class BuildOutput {
  readonly #send: (text: string) => boolean | undefined | void
  readonly #maxLine: number
  readonly #maxLog: number
  readonly #drained: (() => Promise<void>) | undefined
  #file: WriteStream | undefined
  readonly #last: string[] = []
  #partial = ''
  /** Bytes of the current line cut off (0: not cut). */
  #cut = 0
  #logged = 0
  #full = false

  /** `send` answers false when the pusher's side is full (then `opts.drained` is waited for). */
  constructor(send: (text: string) => boolean | undefined | void, opts: OutputOptions = {}) {
    this.#send = send
    this.#maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES
    this.#maxLog = opts.maxLogBytes ?? 16 * 1024 * 1024
    this.#drained = opts.drained
  }

  /** From now on also write to the build's log file. */
  keep(home: string, build: string): void {
    const path = buildLogPath(home, build)
    mkdirSync(join(home, 'builds'), { recursive: true })
    this.#file = createWriteStream(path, { flags: 'a' })
    this.#file.on('error', () => {
      this.#file = undefined
    })
  }

  heading(text: string): void {
    void this.#emit(`-----> ${text}\n`, true)
  }

  /** An error line, in the form git users know from Heroku. */
  error(text: string): void {
    void this.#emit(` !     ${text}\n`, true)
  }

  /**
   * Lines of the build itself (possibly partial; lines are completed across calls). A promise when
   * the pusher's side is full: the caller waits for it before it gives more.
   */
  lines(chunk: string): void | Promise<void> {
    const parts = chunk.replace(/\r\n/g, '\n').split('\n')
    const done: string[] = []
    for (let i = 0; i < parts.length; i++) {
      this.#take(parts[i]!)
      if (i < parts.length - 1) done.push(this.#endLine())
    }
    if (done.length) return this.#emit(done.map((l) => `       ${l}\n`).join(''), false)
  }

  /** Adds a piece of the current line, keeping at most {@link OutputOptions.maxLineBytes} of it. */
  #take(piece: string): void {
    if (this.#cut > 0) {
      this.#cut += Buffer.byteLength(piece)
      return
    }
    this.#partial += piece
    if (this.#partial.length * 3 <= this.#maxLine) return
    const buf = Buffer.from(this.#partial)
    if (buf.length <= this.#maxLine) return
    // Back off to the start of a UTF-8 character, so the cut makes no replacement character.
    let end = this.#maxLine
    while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--
    this.#cut = buf.length - end
    this.#partial = buf.subarray(0, end).toString('utf8')
  }

  #endLine(): string {
    const line = this.#cut > 0 ? `${this.#partial} [truncated ${this.#cut} bytes]` : this.#partial
    this.#partial = ''
    this.#cut = 0
    return line
  }

  /** The last lines, for `BuildFailed`. */
  lastLines(): string[] {
    if (this.#partial || this.#cut) void this.lines('\n')
    return this.#last.map((l) => (l.length > 4096 ? `${l.slice(0, 4093)}...` : l))
  }

  #emit(text: string, always: boolean): void | Promise<void> {
    for (const l of text.split('\n')) {
      if (!l) continue
      this.#last.push(l.length > 4096 ? `${l.slice(0, 4093)}...` : l)
      if (this.#last.length > KEEP) this.#last.shift()
    }
    if (this.#full && !always) return
    let out = text
    this.#logged += Buffer.byteLength(text)
    if (!always && this.#logged > this.#maxLog) {
      this.#full = true
      out = ` !     the build's output passed ${mib(this.#maxLog)}: the rest is not shown or kept (WHARF_BUILD_LOG_MAX)\n`
    }
    this.#file?.write(out)
    if (this.#send(out) === false && this.#drained) return this.#drained()
  }

  async close(): Promise<void> {
    if (this.#partial || this.#cut) void this.lines('\n')
    const f = this.#file
    this.#file = undefined
    if (f) await new Promise<void>((resolve) => f.end(() => resolve()))
  }
}

const mib = (n: number) => (n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : `${n} bytes`)
