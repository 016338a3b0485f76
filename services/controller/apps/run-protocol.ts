/**
 * The WebSocket protocol of `wharf run` (`GET /v1/apps/:app/run`), shared by the controller and the
 * CLI (no dependencies, so the CLI loads nothing else). The message schemas are in run.ts.
 *
 * The protocol, after the upgrade (auth, access and the release are checked before it, so those
 * refusals are plain HTTP answers `{ code, message }`):
 *
 * - client -> server, first: a text frame `{"type":"start","command":[...],...}` ({@link StartMessage}).
 * - client -> server, then: binary frames are stdin bytes (only with `stdin: true`);
 *   text frames `{"type":"resize","cols":n,"rows":n}` and `{"type":"eof"}` (stdin is closed).
 * - server -> client: binary frames are output, the first byte the stream ({@link STDOUT} or
 *   {@link STDERR}; a TTY has only stdout), the rest the bytes; text frames
 *   `{"type":"started","container":id,"release":n}`, then `{"type":"exit","code":n}` or
 *   `{"type":"error","code":"WHARF_...","message":"..."}`, after which the server closes the socket.
 * - the client closing the socket kills and removes the container.
 */
import type { ErrorCode } from '../../../core/errors.js'

/** The stream byte of an output frame: stdout. */
export const STDOUT = 1
/** The stream byte of an output frame: stderr. */
export const STDERR = 2

/** The first message of a run (validated against `StartMessage` in run.ts). */
export interface StartMessage {
  type: 'start'
  /** The command and its arguments, run as given (no shell): `["sh", "-c", "echo $FOO"]`. */
  command: string[]
  /** The process type whose limits apply; default `web`. */
  processType?: string
  /** Extra environment, over the release's config; default none. */
  env?: Record<string, string>
  /** Allocate a TTY (stdout and stderr become one stream); default false. */
  tty?: boolean
  /** Forward stdin (binary frames); default false: the command gets no stdin. */
  stdin?: boolean
  /** The terminal size, with `tty`. */
  cols?: number
  rows?: number
}

/** Text frames the client sends after the start message. */
export type ControlMessage = { type: 'resize'; cols: number; rows: number } | { type: 'eof' }

/** What the server sends as text frames. */
export type ServerMessage =
  | { type: 'started'; container: string; release: number }
  | { type: 'exit'; code: number }
  | { type: 'error'; code: ErrorCode; message: string }
