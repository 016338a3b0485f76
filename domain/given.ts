/** Given / when / then for decider unit tests. */
import { fold, type Decider } from './command.js'
import type { NewEvent, RecordedEvent } from '../events/index.js'

/** Recorded events from `[type, data]` pairs, as a stream would hold them. */
export function history(stream: string, events: [string, unknown][]): RecordedEvent[] {
  return events.map(([type, data], i) => ({
    id: `00000000-0000-7000-8000-${String(i + 1).padStart(12, '0')}`,
    type,
    version: 1,
    stream,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    actor: 'user:test',
    causationId: null,
    correlationId: 'test',
    seq: i + 1,
    data,
  }))
}

/** Decides `command` on the state after `given`; answers the new events as `[type, data]` pairs. */
export function when<S, C>(decider: Decider<S, C>, given: RecordedEvent[], command: C): [string, unknown][] {
  return decider.decide(command, fold(decider, given)).map((e: NewEvent) => [e.type, e.data])
}
