/**
 * A log line and how lines travel: a batch of lines of one source (a container, the platform, the
 * syslog receiver) is one message on the log stream. Pure: no I/O.
 */

/** Where a line comes from: an app's container, the platform (`[wharf] ...`), or syslog input. */
export type LogSource = 'app' | 'wharf' | 'syslog'

/** One line of an app's log. */
export interface LogLine {
  /** Stream position, `<seq>.<index in its batch>`: unique, and in the order the logger received lines. */
  id: string
  /** When it was written, RFC 3339 UTC (Docker's nanoseconds for container lines). */
  time: string
  app: string
  source: LogSource
  /** Process type (`web`) of a container line, or of a syslog line whose PROCID names one (`web.1`). */
  type?: string
  /** The process number (web.1 -> 1). */
  number?: number
  /** Release version the process runs. */
  release?: number
  stream?: 'stdout' | 'stderr'
  /** The container's short id (app lines) or the sender's host name (syslog lines). */
  origin?: string
  text: string
}

/** One message of the log stream: lines of one app and one source, oldest first. */
export interface LogBatch {
  app: string
  source: LogSource
  type?: string
  number?: number
  release?: number
  origin?: string
  /** `[time, stream (0 stdout, 1 stderr, -1 none), text, type?, number?]` per line; the type and number override the batch's. */
  lines: BatchLine[]
  /**
   * Container batches: where the container's log stands after this batch, per stream `[stdout, stderr]`
   * (Docker timestamp, messages of the stream seen at it; null before the stream's first line). Batches
   * of earlier versions hold one `[time, k]` for both.
   */
  pos?: [[string, number] | null, [string, number] | null] | [string, number]
}

export type BatchLine = [time: string, stream: 0 | 1 | -1, text: string, type?: string, number?: number]

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeBatch(b: LogBatch): Uint8Array {
  return encoder.encode(JSON.stringify(b))
}

/** A batch from the stream, or undefined when the message is not one (it is then skipped, never fatal). */
export function decodeBatch(data: Uint8Array): LogBatch | undefined {
  try {
    const b = JSON.parse(decoder.decode(data)) as LogBatch
    return b && typeof b.app === 'string' && Array.isArray(b.lines) ? b : undefined
  } catch {
    return undefined
  }
}

/** The lines of a batch stored at stream sequence `seq`. */
export function linesOf(b: LogBatch, seq: number): LogLine[] {
  return b.lines.map((l, i) => {
    const line: LogLine = { id: `${seq}.${i}`, time: l[0], app: b.app, source: b.source, text: l[2] }
    const type = l[3] ?? b.type
    const number = l[4] ?? b.number
    if (type !== undefined) line.type = type
    if (number !== undefined) line.number = number
    if (b.release !== undefined) line.release = b.release
    if (l[1] !== -1) line.stream = l[1] === 1 ? 'stderr' : 'stdout'
    if (b.origin !== undefined) line.origin = b.origin
    return line
  })
}

/** Orders line ids (`<seq>.<index>`) as the stream does. */
export function compareIds(a: string, b: string): number {
  const [sa, ia] = a.split('.').map(Number) as [number, number]
  const [sb, ib] = b.split('.').map(Number) as [number, number]
  return sa - sb || ia - ib
}

/** The longest line kept, bytes (UTF-8); longer ones are cut with a marker. Docker itself splits at 16 KiB. */
export const MAX_LINE_BYTES = 16 * 1024

/**
 * A line as text fit to store and print: invalid UTF-8 becomes U+FFFD, control characters other than
 * tab and escape become `\xNN` (binary output cannot garble a terminal or a syslog frame), a
 * trailing CR is dropped, and text beyond `maxBytes` is cut with ` [truncated N bytes]` (N counts
 * what was cut, plus `dropped`: bytes the caller already left out).
 */
export function sanitizeLine(raw: Buffer | string, maxBytes = MAX_LINE_BYTES, dropped = 0): string {
  let buf = typeof raw === 'string' ? Buffer.from(raw) : raw
  let cut = dropped
  if (buf.length > maxBytes) {
    // Back off to the start of a UTF-8 character, so the cut does not make a replacement character.
    let end = maxBytes
    while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--
    cut += buf.length - end
    buf = buf.subarray(0, end)
  }
  let text = buf.toString('utf8')
  if (text.endsWith('\r')) text = text.slice(0, -1)
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return cut > 0 ? `${text} [truncated ${cut} bytes]` : text
}

/** `web.1` for a line with a type and number, `web` with a type only, else the source. */
export function processOf(l: Pick<LogLine, 'source' | 'type' | 'number'>): string {
  if (l.source === 'wharf') return 'wharf'
  if (l.type) return l.number !== undefined ? `${l.type}.${l.number}` : l.type
  return l.source
}

/** How `wharf logs` prints a line: `<time> [web.1] text`, `<time> [wharf] release v3 created by alice`. */
export function formatLine(l: LogLine): string {
  return `${l.time} [${processOf(l)}] ${l.text}`
}
