import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { WharfError } from '../core/errors.js'
import { toEnvelopes, type EventContext, type EventEnvelope, type NewEvent } from './envelope.js'
import { isStreamId, type StreamKind } from './subjects.js'

/**
 * One version of one event type. Version 1 has no upcaster; version n > 1 has `upcast`, a pure
 * function from the data of version n-1 to the data of version n (given the whole old envelope for
 * context). A retired type name is never reused.
 */
export interface EventDefinition {
  type: string
  version: number
  /** The kind of stream this type lives on (`app` for `ConfigSet`). */
  stream: StreamKind
  schema: TSchema
  upcast?: (previous: any, event: EventEnvelope) => unknown
  /** One line for the API reference. */
  description?: string
}

interface Compiled {
  def: EventDefinition
  check: (value: unknown) => boolean
  errors: (value: unknown) => { instancePath: string; message: string }[]
}

/** An error message safe to show: the first few schema failures, as `path: message`. */
function describe(errors: { instancePath: string; message: string }[]): string {
  return errors
    .slice(0, 3)
    .map((e) => `${e.instancePath || '/'}: ${e.message}`)
    .join('; ')
}

/**
 * The registry of event types: a JSON Schema per type and version, validation on append and
 * upcasting on read.
 */
export class Catalogue {
  readonly #types = new Map<string, Compiled[]>()

  constructor(defs: readonly EventDefinition[] = []) {
    for (const def of defs) this.define(def)
  }

  define(def: EventDefinition): this {
    const versions = this.#types.get(def.type) ?? []
    if (def.version !== versions.length + 1) {
      throw new TypeError(`${def.type}: versions must be defined in order 1, 2, ...; got ${def.version} after ${versions.length}`)
    }
    if (def.version > 1 && !def.upcast) throw new TypeError(`${def.type} v${def.version} needs an upcaster from v${def.version - 1}`)
    if (versions[0] && versions[0].def.stream !== def.stream) throw new TypeError(`${def.type}: every version must live on the same stream kind`)
    const validator = Compile(def.schema)
    versions.push({
      def,
      check: (v) => validator.Check(v),
      errors: (v) => [...validator.Errors(v)].map((e) => ({ instancePath: e.instancePath, message: e.message })),
    })
    this.#types.set(def.type, versions)
    return this
  }

  has(type: string): boolean {
    return this.#types.has(type)
  }

  types(): string[] {
    return [...this.#types.keys()]
  }

  definitions(): EventDefinition[] {
    return [...this.#types.values()].flatMap((vs) => vs.map((v) => v.def))
  }

  /** The newest version of `type`; throws `WHARF_INVALID_EVENT` for an unknown type. */
  latest(type: string): number {
    const versions = this.#types.get(type)
    if (!versions) throw new WharfError('WHARF_INVALID_EVENT', `unknown event type ${JSON.stringify(type)}`, { details: { type } })
    return versions.length
  }

  /**
   * Refuses an event that is not the newest version of a known type, is on the wrong kind of
   * stream, or whose data fails the schema. Old versions are only ever read, never written.
   */
  validate(event: Pick<EventEnvelope, 'type' | 'version' | 'stream' | 'data'>): void {
    const versions = this.#types.get(event.type)
    if (!versions) throw new WharfError('WHARF_INVALID_EVENT', `unknown event type ${JSON.stringify(event.type)}`, { details: { type: event.type } })
    if (event.version !== versions.length) {
      throw new WharfError('WHARF_INVALID_EVENT', `${event.type} must be written as v${versions.length}, not v${event.version}`, {
        details: { type: event.type, version: event.version },
      })
    }
    const compiled = versions[versions.length - 1]!
    const kind = event.stream.slice(0, event.stream.indexOf('.'))
    if (kind !== compiled.def.stream) {
      throw new WharfError('WHARF_INVALID_EVENT', `${event.type} belongs on a ${compiled.def.stream} stream, not ${event.stream}`, {
        details: { type: event.type, stream: event.stream },
      })
    }
    if (!compiled.check(event.data)) {
      const errors = compiled.errors(event.data)
      throw new WharfError('WHARF_INVALID_EVENT', `${event.type} v${event.version} data is invalid: ${describe(errors)}`, {
        details: { type: event.type, version: event.version, errors: errors.slice(0, 10) },
      })
    }
  }

  /**
   * The envelopes of one append, each validated, for an adapter to write: throws
   * `WHARF_INVALID_EVENT` (and nothing may be written) on an invalid stream id, an invalid event, or
   * an id given twice.
   */
  prepare(stream: string, events: readonly NewEvent[], ctx: EventContext): EventEnvelope[] {
    if (!isStreamId(stream)) throw new WharfError('WHARF_INVALID_EVENT', `invalid stream ${JSON.stringify(stream)}`, { details: { stream } })
    const envelopes = toEnvelopes(stream, events, ctx, (type) => this.latest(type))
    const ids = new Set<string>()
    for (const e of envelopes) {
      this.validate(e)
      if (ids.has(e.id)) throw new WharfError('WHARF_INVALID_EVENT', `event id ${e.id} appears twice in one append`, { details: { id: e.id } })
      ids.add(e.id)
    }
    return envelopes
  }

  /**
   * Brings an event read from the log to the newest version of its type by applying the
   * upcasters in order. Unknown types pass through unchanged (a reader may be older than the log).
   */
  upcast<E extends EventEnvelope>(event: E): E {
    const versions = this.#types.get(event.type)
    if (!versions || event.version >= versions.length) return event
    let data: unknown = event.data
    for (let v = event.version + 1; v <= versions.length; v++) data = versions[v - 1]!.def.upcast!(data, event)
    return { ...event, version: versions.length, data }
  }
}
