/**
 * `wharf run`: the container spec of a one-off process and the checks of its protocol's messages
 * (the protocol is in run-protocol.ts). No I/O here; routes/run.ts does the Docker and socket work.
 */
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import type { ContainerSpec } from '../../../core/engine/engine.js'
import { ProcessType } from '../../../domain/index.js'
import { envList, memoryBytes, processEnv } from '../../../domain/runtime/process.js'
import { LABELS } from '../../../domain/runtime/labels.js'
import type { ReleaseView } from './queries.js'
import type { ControlMessage, StartMessage } from './run-protocol.js'

/** Labels of a one-off container: `wharf.app`, `wharf.run` (the request id), `wharf.release`, `wharf.user`. */
export const RUN_LABEL = LABELS.run

const EnvKey = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' })
const Size = Type.Integer({ minimum: 1, maximum: 10_000 })

/** The first message of a run (see {@link StartMessage}). */
export const StartMessageSchema = Type.Object(
  {
    type: Type.Literal('start'),
    /** The command and its arguments, run as given (no shell): `["sh", "-c", "echo $FOO"]`. */
    command: Type.Array(Type.String({ maxLength: 131_072 }), { minItems: 1, maxItems: 1000 }),
    /** The process type whose limits apply; default `web`. */
    processType: Type.Optional(ProcessType),
    /** Extra environment, over the release's config; default none. */
    env: Type.Optional(Type.Record(EnvKey, Type.String({ maxLength: 32_768 }), { additionalProperties: false })),
    /** Allocate a TTY (stdout and stderr become one stream); default false. */
    tty: Type.Optional(Type.Boolean()),
    /** Forward stdin (binary frames); default false: the command gets no stdin. */
    stdin: Type.Optional(Type.Boolean()),
    /** The terminal size, with `tty`. */
    cols: Type.Optional(Size),
    rows: Type.Optional(Size),
  },
  { additionalProperties: false },
)
const ControlMessageSchema = Type.Union([
  Type.Object({ type: Type.Literal('resize'), cols: Size, rows: Size }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('eof') }, { additionalProperties: false }),
])
/** The schemas and the protocol's types say the same (a change to one alone fails to compile). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const _sameStart: Same<Static<typeof StartMessageSchema>, StartMessage> = true
const _sameControl: Same<Static<typeof ControlMessageSchema>, ControlMessage> = true
void [_sameStart, _sameControl]

const startChecker = Compile(StartMessageSchema)
const controlChecker = Compile(ControlMessageSchema)

/** Parses a text frame as a start message; answers an error sentence when it is not one. */
export function parseStart(text: string): StartMessage | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return 'the first message is not JSON: send {"type":"start","command":[...]}'
  }
  if (startChecker.Check(value)) return value
  if (typeof value === 'object' && value !== null && (!('command' in value) || (Array.isArray(value.command) && value.command.length === 0))) {
    return 'no command: give the command to run (wharf run -- <command...>)'
  }
  const first = [...startChecker.Errors(value)][0]
  return `the start message is not valid: ${first ? `${first.instancePath || '/'} ${first.message}` : 'unknown shape'}`
}

/** Parses a text frame after the start; undefined when it is not a known control message. */
export function parseControl(text: string): ControlMessage | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return controlChecker.Check(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * The environment of a one-off process: what the scheduler gives a process of the type, then the
 * caller's `-e` values over it.
 */
export function runEnv(release: ReleaseView, extra: Record<string, string> = {}, type = 'web'): string[] {
  return envList({ ...processEnv({ ...release, port: release.port ?? undefined }, type), ...extra })
}

/** The platform's bounds of every `run` container (`WHARF_RUN_PIDS`, `WHARF_RUN_MEMORY_MB`, `WHARF_RUN_CPUS`). */
export interface RunBounds {
  pids: number
  memoryBytes: number
  cpus: number
}

/**
 * `docker create` options of a one-off process of `release` (which has an image): the image's
 * entrypoint with `command` as its arguments, on the default bridge network with no published
 * ports, removed by the engine when it exits (and by the controller in every other case).
 */
export function runContainerSpec(
  release: ReleaseView & { image: string },
  start: StartMessage,
  labels: { run: string; user: string },
  bounds: RunBounds,
): ContainerSpec {
  const type = start.processType ?? 'web'
  // The app's own limits for the type when lower, else the platform's (a run is never unbounded).
  const memory = Math.min(memoryBytes(release.limits.memory[type]) ?? Infinity, bounds.memoryBytes)
  const cpu = Math.min(release.limits.cpu[type] ?? Infinity, bounds.cpus)
  const stdin = start.stdin ?? false
  return {
    Image: release.image,
    Cmd: start.command,
    Env: runEnv(release, start.env, type),
    Tty: start.tty ?? false,
    OpenStdin: stdin,
    StdinOnce: stdin,
    AttachStdin: stdin,
    AttachStdout: true,
    AttachStderr: true,
    Labels: { [LABELS.app]: release.app, [RUN_LABEL]: labels.run, [LABELS.release]: String(release.version), [LABELS.type]: type, [LABELS.user]: labels.user },
    HostConfig: {
      AutoRemove: true,
      NetworkMode: 'bridge',
      Memory: memory,
      // No swap beyond the memory limit (the engine's default would double it).
      MemorySwap: memory,
      NanoCpus: Math.round(cpu * 1e9),
      PidsLimit: bounds.pids,
    },
  }
}

/**
 * Splits the engine's multiplexed attach stream (no TTY) into `(stream, bytes)` frames: each frame
 * is an 8-byte header (stream byte, 3 zero bytes, big-endian length) and the payload. Feed it
 * chunks as they come; a frame split across chunks is kept until it is whole.
 */
export function demuxer(onFrame: (stream: number, data: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4)
      if (pending.length < 8 + size) break
      onFrame(pending[0]!, pending.subarray(8, 8 + size))
      pending = pending.subarray(8 + size)
    }
  }
}

/** An output frame: the stream byte, then the bytes. */
export function outputFrame(stream: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([stream]), data])
}
