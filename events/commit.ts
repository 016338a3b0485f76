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

/** {@link decodeCommit} of the message's text (its bytes decoded as UTF-8). */
export function decodeCommitText(text: string, seq: number): RecordedEvent[] {
  // The parsed objects are new and ours: they get their fields in place rather than copied (a replay decodes millions).
  if (text.charCodeAt(0) !== OPEN_BRACKET) {
    const e = JSON.parse(text) as RecordedEvent
    e.seq = seq
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
