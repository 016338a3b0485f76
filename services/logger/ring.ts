/**
 * The recent lines of every app, bounded per app (lines and bytes), so that one app's flood only
 * pushes out its own lines. Pure: no I/O.
 */
import { matches, type LineFilter, type LogLine } from '../../logs/index.js'

/** Bytes of text one app may keep, whatever its line bound: 16 MiB. */
export const MAX_APP_BYTES = 16 * 1024 * 1024

class AppRing {
  lines: LogLine[] = []
  bytes = 0
}

export class LogRings {
  readonly #apps = new Map<string, AppRing>()

  constructor(
    /** Lines kept per app. */
    readonly maxLines: number,
    /** Bytes of text kept per app. */
    readonly maxBytes = MAX_APP_BYTES,
  ) {}

  /** Adds lines of one app, oldest first; the app's oldest go when it is over its bounds. */
  add(app: string, lines: readonly LogLine[]): void {
    let r = this.#apps.get(app)
    if (!r) this.#apps.set(app, (r = new AppRing()))
    for (const l of lines) {
      r.lines.push(l)
      r.bytes += l.text.length
    }
    // Trimmed in chunks (a quarter over the bound), so that a busy app does not shift its array per line.
    if (r.lines.length > this.maxLines * 1.25 || r.bytes > this.maxBytes) {
      let drop = Math.max(0, r.lines.length - this.maxLines)
      let bytes = r.bytes
      for (let i = 0; i < drop; i++) bytes -= r.lines[i]!.text.length
      while (bytes > this.maxBytes && drop < r.lines.length - 1) bytes -= r.lines[drop++]!.text.length
      r.lines.splice(0, drop)
      r.bytes = bytes
    }
  }

  /** The newest `n` lines of `app` that match, oldest first. */
  recent(app: string, n: number, filter: LineFilter = {}): LogLine[] {
    const lines = this.#apps.get(app)?.lines ?? []
    const out: LogLine[] = []
    for (let i = lines.length - 1; i >= 0 && out.length < Math.min(n, this.maxLines); i--) if (matches(lines[i]!, filter)) out.push(lines[i]!)
    return out.reverse()
  }

  /** Forgets an app (destroyed). */
  drop(app: string): void {
    this.#apps.delete(app)
  }

  get apps(): number {
    return this.#apps.size
  }
}
