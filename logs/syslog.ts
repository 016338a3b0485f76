/**
 * Syslog as Wharf speaks it: parsing RFC 5424 and RFC 3164 messages (strictly: what does not parse is
 * malformed and dropped, never guessed at), TCP framing by octet counting (RFC 6587) or by line feed,
 * and formatting RFC 5424 frames for syslog drains. Pure: no I/O.
 */
import type { LogLine } from './line.js'

/** A parsed syslog message. */
export interface SyslogMessage {
  facility: number
  severity: number
  /** The message's own time (RFC 3339), or undefined when it has none (`-`). */
  time: string | undefined
  hostname: string | undefined
  /** RFC 5424 APP-NAME, or RFC 3164 TAG: the Wharf app the line belongs to. */
  appName: string | undefined
  procId: string | undefined
  msgId: string | undefined
  message: string
}

/** Largest frame taken, bytes; a longer one is malformed (and skipped whole). */
export const MAX_FRAME_BYTES = 64 * 1024

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/
/** PRINTUSASCII without space, 1..max characters, or the nil value `-`. */
const token = (max: number) => new RegExp(`^[\\x21-\\x7e]{1,${max}}$`)
const HOSTNAME = token(255)
const APP_NAME = token(48)
const PROC_ID = token(128)
const MSG_ID = token(32)

function nil(v: string): string | undefined {
  return v === '-' ? undefined : v
}

/** `<PRI>` at the start: its value and length, or undefined. */
function pri(text: string): { value: number; length: number } | undefined {
  const m = /^<(\d{1,3})>/.exec(text)
  if (!m) return undefined
  const value = Number(m[1])
  if (value > 191 || (m[1]!.length > 1 && m[1]!.startsWith('0'))) return undefined
  return { value, length: m[0].length }
}

/**
 * Parses one message, RFC 5424 (`<PRI>1 ...`) or RFC 3164 (`<PRI>Mmm dd hh:mm:ss host tag: msg`).
 * `now` gives RFC 3164's missing year. Throws a `SyslogError` saying what is wrong.
 */
export function parseSyslog(frame: string, now = new Date()): SyslogMessage {
  const p = pri(frame)
  if (!p) throw new SyslogError('no <PRI> (0-191) at the start')
  const rest = frame.slice(p.length)
  const base = { facility: p.value >> 3, severity: p.value & 7 }
  return rest.startsWith('1 ') ? { ...base, ...parse5424(rest.slice(2)) } : { ...base, ...parse3164(rest, now) }
}

export class SyslogError extends Error {
  override name = 'SyslogError'
}

function parse5424(s: string): Omit<SyslogMessage, 'facility' | 'severity'> {
  const fields: string[] = []
  let at = 0
  for (let i = 0; i < 5; i++) {
    const sp = s.indexOf(' ', at)
    if (sp < 0) throw new SyslogError('RFC 5424: the header ends early')
    fields.push(s.slice(at, sp))
    at = sp + 1
  }
  const [ts, host, app, proc, msgid] = fields as [string, string, string, string, string]
  if (ts !== '-' && (!RFC3339.test(ts) || Number.isNaN(Date.parse(ts)))) throw new SyslogError(`RFC 5424: not a timestamp: ${ts.slice(0, 40)}`)
  if (!HOSTNAME.test(host)) throw new SyslogError('RFC 5424: bad HOSTNAME')
  if (!APP_NAME.test(app)) throw new SyslogError('RFC 5424: bad APP-NAME')
  if (!PROC_ID.test(proc)) throw new SyslogError('RFC 5424: bad PROCID')
  if (!MSG_ID.test(msgid)) throw new SyslogError('RFC 5424: bad MSGID')
  const sdEnd = structuredDataEnd(s, at)
  let message = s.slice(sdEnd)
  if (message.startsWith(' ')) message = message.slice(1)
  else if (message.length > 0) throw new SyslogError('RFC 5424: no space after STRUCTURED-DATA')
  if (message.startsWith('\ufeff')) message = message.slice(1)
  return { time: ts === '-' ? undefined : new Date(ts).toISOString(), hostname: nil(host), appName: nil(app), procId: nil(proc), msgId: nil(msgid), message }
}

/** Where STRUCTURED-DATA (`-`, or `[id k="v" ...]...`) starting at `at` ends. */
function structuredDataEnd(s: string, at: number): number {
  if (s[at] === '-') return at + 1
  if (s[at] !== '[') throw new SyslogError('RFC 5424: STRUCTURED-DATA is neither - nor [...]')
  let i = at
  while (s[i] === '[') {
    i++
    let inValue = false
    for (;;) {
      const c = s[i]
      if (c === undefined) throw new SyslogError('RFC 5424: unterminated STRUCTURED-DATA')
      if (inValue) {
        if (c === '\\') i++
        else if (c === '"') inValue = false
      } else if (c === '"') inValue = true
      else if (c === ']') break
      i++
    }
    i++
  }
  return i
}

function parse3164(s: string, now: Date): Omit<SyslogMessage, 'facility' | 'severity'> {
  const m = /^([A-Z][a-z]{2}) ([ 1-3]\d) (\d{2}):(\d{2}):(\d{2}) (\S{1,255}) ([A-Za-z0-9_./-]{1,48})(?:\[([^\]\s]{1,128})\])?: ?/.exec(s)
  if (!m) throw new SyslogError('neither RFC 5424 nor RFC 3164 (<PRI>Mmm dd hh:mm:ss host tag: message)')
  const month = MONTHS.indexOf(m[1]!)
  const [day, h, min, sec] = [Number(m[2]!.trim()), Number(m[3]), Number(m[4]), Number(m[5])]
  if (month < 0 || day < 1 || day > 31 || h > 23 || min > 59 || sec > 60) throw new SyslogError('RFC 3164: bad timestamp')
  // No year: this year, unless that is more than a day ahead (a December line read in January).
  let t = Date.UTC(now.getUTCFullYear(), month, day, h, min, sec)
  if (t > now.getTime() + 86_400_000) t = Date.UTC(now.getUTCFullYear() - 1, month, day, h, min, sec)
  return { time: new Date(t).toISOString(), hostname: m[6], appName: m[7], procId: m[8], msgId: undefined, message: s.slice(m[0].length) }
}

/**
 * Splits a TCP byte stream into syslog frames: octet counting (`<len> <frame>`, RFC 6587 3.4.1) when
 * a frame starts with a digit, else a frame per line (LF, RFC 6587 3.4.2). A frame over `maxBytes` is
 * reported (`onMalformed`) and skipped whole.
 */
export class SyslogFramer {
  #buf: Buffer = Buffer.alloc(0)
  /** Bytes of an oversized frame still to skip; -1: skip to the next LF. */
  #skip = 0
  readonly #onFrame: (frame: Buffer) => void
  readonly #onMalformed: (why: string) => void
  readonly #maxBytes: number

  constructor(onFrame: (frame: Buffer) => void, onMalformed: (why: string) => void, maxBytes = MAX_FRAME_BYTES) {
    this.#onFrame = onFrame
    this.#onMalformed = onMalformed
    this.#maxBytes = maxBytes
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    for (;;) {
      if (this.#skip !== 0) {
        if (this.#skip === -1) {
          const lf = this.#buf.indexOf(0x0a)
          if (lf < 0) return void (this.#buf = Buffer.alloc(0))
          this.#buf = this.#buf.subarray(lf + 1)
        } else {
          const n = Math.min(this.#skip, this.#buf.length)
          this.#buf = this.#buf.subarray(n)
          this.#skip -= n
          if (this.#skip > 0) return
        }
        this.#skip = 0
      }
      if (this.#buf.length === 0) return
      const first = this.#buf[0]!
      if (first >= 0x30 && first <= 0x39) {
        const sp = this.#buf.indexOf(0x20)
        if (sp < 0) {
          if (this.#buf.length > 10) this.#bad('octet count without a space', -1)
          else return
          continue
        }
        const count = this.#buf.subarray(0, sp).toString('latin1')
        if (!/^[1-9]\d{0,9}$/.test(count)) {
          this.#bad(`bad octet count ${JSON.stringify(count.slice(0, 12))}`, -1)
          continue
        }
        const len = Number(count)
        if (len > this.#maxBytes) {
          this.#buf = this.#buf.subarray(sp + 1)
          this.#bad(`frame of ${len} bytes is over ${this.#maxBytes}`, len)
          continue
        }
        if (this.#buf.length < sp + 1 + len) return
        this.#onFrame(this.#buf.subarray(sp + 1, sp + 1 + len))
        this.#buf = this.#buf.subarray(sp + 1 + len)
      } else {
        const lf = this.#buf.indexOf(0x0a)
        if (lf < 0) {
          if (this.#buf.length > this.#maxBytes) this.#bad(`line over ${this.#maxBytes} bytes`, -1)
          return
        }
        const frame = this.#buf.subarray(0, lf)
        this.#buf = this.#buf.subarray(lf + 1)
        if (frame.length > 0 && !(frame.length === 1 && frame[0] === 0x0d)) this.#onFrame(frame)
      }
    }
  }

  /** What is left when the connection ends: an unterminated last line is a frame too. */
  end(): void {
    const first = this.#buf[0]
    const counted = first !== undefined && first >= 0x30 && first <= 0x39
    if (this.#skip === 0 && first !== undefined) {
      if (!counted && this.#buf.length <= this.#maxBytes) this.#onFrame(this.#buf)
      else this.#onMalformed('the connection ended inside a frame')
    }
    this.#buf = Buffer.alloc(0)
  }

  #bad(why: string, skip: number): void {
    this.#onMalformed(why)
    this.#skip = skip
  }
}

/** Severity: informational for stdout and platform lines, error for stderr; facility user (1). */
function priOf(l: Pick<LogLine, 'stream'>): number {
  return 8 + (l.stream === 'stderr' ? 3 : 6)
}

/**
 * One RFC 5424 message for a drain, octet-counted (RFC 6587): `<14>1 TIME HOST APP PROC - - TEXT`,
 * APP-NAME the app, PROCID the process (`web.1`, `wharf`). A receiver that is a Wharf files it under
 * the same app.
 */
export function formatSyslogFrame(l: LogLine, proc: string, host = 'wharf'): Buffer {
  const msg = Buffer.from(`<${priOf(l)}>1 ${l.time} ${host} ${l.app} ${proc.replace(/[^\x21-\x7e]/g, '_').slice(0, 128) || '-'} - - ${l.text}`)
  return Buffer.concat([Buffer.from(`${msg.length} `), msg])
}
