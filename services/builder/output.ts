import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { buildLogPath } from '../../core/paths.js'

const KEEP = 30

/**
 * The output of one build, Heroku style: headings `-----> ...`, the build's own lines indented. Goes
 * to the pusher's terminal as it happens, to the build's log file, and keeps the last lines for
 * `BuildFailed`.
 */
export class BuildOutput {
  readonly #send: (text: string) => void
  #file: WriteStream | undefined
  readonly #last: string[] = []
  #partial = ''

  constructor(send: (text: string) => void) {
    this.#send = send
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
    this.#emit(`-----> ${text}\n`)
  }

  /** An error line, in the form git users know from Heroku. */
  error(text: string): void {
    this.#emit(` !     ${text}\n`)
  }

  /** Lines of the build itself (possibly partial; lines are completed across calls). */
  lines(chunk: string): void {
    const text = this.#partial + chunk.replace(/\r\n/g, '\n')
    const parts = text.split('\n')
    this.#partial = parts.pop() ?? ''
    if (parts.length) this.#emit(parts.map((l) => `       ${l}\n`).join(''))
  }

  /** The last lines, for `BuildFailed`. */
  lastLines(): string[] {
    if (this.#partial) this.lines('\n')
    return this.#last.map((l) => (l.length > 4096 ? `${l.slice(0, 4093)}...` : l))
  }

  #emit(text: string): void {
    this.#send(text)
    this.#file?.write(text)
    for (const l of text.split('\n')) {
      if (!l) continue
      this.#last.push(l)
      if (this.#last.length > KEEP) this.#last.shift()
    }
  }

  async close(): Promise<void> {
    if (this.#partial) this.lines('\n')
    const f = this.#file
    this.#file = undefined
    if (f) await new Promise<void>((resolve) => f.end(() => resolve()))
  }
}
