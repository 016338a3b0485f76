import type { EventEnvelope, RecordedEvent } from './envelope.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const OPEN_BRACKET = 0x5b

/**
 * The body of one log message, which is one commit (one append): a commit of one event is its
 * envelope as a JSON object, as every message before commits existed; a commit of several is a JSON
 * array of their envelopes, so that the server writes all of them or none. nats-server 2.9 has no
 * atomic batch publish, hence one message.
 */
export function encodeCommit(envelopes: readonly EventEnvelope[]): Uint8Array {
  return encoder.encode(JSON.stringify(envelopes.length === 1 ? envelopes[0] : envelopes))
}

/**
 * The events of the message at `seq`, not upcast: each carries `seq`, and on a commit of several,
 * `index` and `commitSize` (see {@link RecordedEvent}).
 */
export function decodeCommit(data: Uint8Array, seq: number): RecordedEvent[] {
  return decodeCommitText(decoder.decode(data), seq)
}

/**
 * {@link decodeCommit} of the message's text (its bytes decoded as UTF-8). `keepDataText`: an event
 * of a commit of one gets the text of its `data` as written, where it can be told ({@link dataText}).
 */
export function decodeCommitText(text: string, seq: number, keepDataText = false): RecordedEvent[] {
  // The parsed objects are new and ours: they get their fields in place rather than copied (a replay decodes millions).
  if (text.charCodeAt(0) !== OPEN_BRACKET) {
    const e = JSON.parse(text) as RecordedEvent
    const data = keepDataText ? dataTextIn(e, text) : undefined
    e.seq = seq
    // Not enumerable: not compared, not copied by a spread (an upcast's new data has no such text).
    if (data !== undefined) Object.defineProperty(e, DATA_TEXT, { value: data })
    return [e]
  }
  const events = JSON.parse(text) as RecordedEvent[]
  const commitSize = events.length
  for (let index = 0; index < commitSize; index++) {
    const e = events[index]!
    e.seq = seq
    e.index = index
    e.commitSize = commitSize
  }
  return events
}

/** Where {@link decodeCommitText} keeps the text of an event's `data`. */
const DATA_TEXT = Symbol('wharf.dataText')

/**
 * The text of `e.data` as its message holds it, when {@link decodeCommitText} kept it (`keepDataText`):
 * `JSON.stringify(e.data)` without the work (a replay's event log writes a million `data` columns).
 * The log's messages are `JSON.stringify` of their envelopes (`encodeCommit`), and that text read back
 * and written again is the same text. Undefined when it was not kept, or `e` is a copy of the event
 * read (an upcast's, with new data).
 */
export function dataText(e: RecordedEvent): string | undefined {
  return (e as RecordedEvent & { [DATA_TEXT]?: string })[DATA_TEXT]
}

const CLOSE_BRACE = 0x7d
const SPACE = 0x20

/**
 * The text of `e.data` in `text`, the message `e` was just parsed from (before anything was added to
 * it), or undefined when that cannot be told for sure. It can when `data` is the object's last field
 * and every field before it a scalar (as `toEnvelopes` makes every envelope): then no `"data":` comes
 * before that field's own (a string holds no bare `"`), and its value runs to the closing brace.
 */
function dataTextIn(e: RecordedEvent, text: string): string | undefined {
  let last: string | undefined
  for (const k in e) {
    if (last === 'data') return undefined
    last = k
    if (k === 'data') continue
    const v = (e as unknown as Record<string, unknown>)[k]
    if (typeof v === 'object' && v !== null) return undefined
  }
  const end = text.length - 1
  if (last !== 'data' || text.charCodeAt(end) !== CLOSE_BRACE) return undefined
  const at = text.indexOf('"data":')
  // Text with blanks between its tokens was not written by JSON.stringify: not kept.
  if (at < 0 || text.charCodeAt(at + 7) <= SPACE || text.charCodeAt(end - 1) <= SPACE) return undefined
  return text.slice(at + 7, end)
}
