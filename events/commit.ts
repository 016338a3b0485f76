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
  if (data[0] !== OPEN_BRACKET) return [{ ...(JSON.parse(decoder.decode(data)) as EventEnvelope), seq }]
  const envelopes = JSON.parse(decoder.decode(data)) as EventEnvelope[]
  const commitSize = envelopes.length
  return envelopes.map((e, index) => ({ ...e, seq, index, commitSize }))
}
