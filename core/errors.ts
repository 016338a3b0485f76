/**
 * The one catalogue of Wharf's error codes. Each code maps once to an HTTP status; the CLI prints
 * `message (CODE)` and exits non-zero. Codes are stable: never rename or reuse one.
 */
export const ERRORS = {
  WHARF_INVALID: { status: 400, summary: 'The request or its input is not valid.' },
  WHARF_INVALID_EVENT: { status: 400, summary: 'An event does not match the schema of its type and version.' },
  WHARF_UNAUTHORIZED: { status: 401, summary: 'No valid credentials were given.' },
  WHARF_FORBIDDEN: { status: 403, summary: 'The caller may not do this.' },
  WHARF_NOT_FOUND: { status: 404, summary: 'The thing asked for does not exist (or the caller may not see it).' },
  WHARF_CONFLICT: { status: 409, summary: 'The state changed under the command (expected version did not match) after bounded retries.' },
  WHARF_BUSY: { status: 409, summary: 'The same kind of long operation is running already (an admin replay); try again when it ends.' },
  WHARF_RESERVED: {
    status: 403,
    summary: "The name or domain is the platform's own (the controller's host, the router's probe, a name under the platform domain).",
  },
  WHARF_QUOTA: {
    status: 403,
    summary: 'The command would take the caller past a quota of the platform (apps or replicas per user); the message names the setting.',
  },
  WHARF_KEY_UNPROVEN: {
    status: 403,
    summary: "An SSH key added without proof that the caller holds its private key (a signature of the API's challenge, ssh-keygen -Y sign -n wharf-keys).",
  },
  WHARF_EXISTS: { status: 409, summary: 'The thing to create exists already (an app, a user, a key, a domain).' },
  WHARF_BACKUP_CORRUPT: { status: 422, summary: 'A backup or event-log export fails its checks (format, checksum, contents); nothing was changed.' },
  WHARF_BACKUP_FOREIGN: { status: 422, summary: 'A backup belongs to another platform (another event log); nothing was changed.' },
  WHARF_OUT_OF_RANGE: { status: 422, summary: "A point of the event log outside what exists: before the thing existed, in the future, beyond the log's end." },
  WHARF_RATE_LIMITED: { status: 429, summary: 'Too many attempts in a short time (failed sign-ins); wait and try again.' },
  WHARF_TOO_LARGE: { status: 413, summary: 'The request body is larger than allowed.' },
  WHARF_TIMEOUT: { status: 504, summary: 'A bounded wait ran out (for example a read model catching up).' },
  WHARF_DEPLOY_FAILED: { status: 502, summary: 'The deploy a command caused failed (the previous release keeps running); the message has the reason.' },
  WHARF_UNAVAILABLE: { status: 503, summary: 'A part the request needs is down or not ready.' },
  WHARF_INTERNAL: { status: 500, summary: 'An unexpected failure; the logs have the details.' },
} as const satisfies Record<string, { status: number; summary: string }>

export type ErrorCode = keyof typeof ERRORS

/** An error with a stable code from {@link ERRORS}. `details` is safe to show to the caller. */
export class WharfError extends Error {
  override name = 'WharfError'
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.details = opts.details
  }

  get status(): number {
    return ERRORS[this.code].status
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message }
  }
}

/**
 * The stream moved on since the decision was made: `expected` was the version the caller read,
 * `actual` is what the log holds now (when the adapter can tell). Callers reload, decide again and
 * retry a bounded number of times, then answer `WHARF_CONFLICT`.
 */
export class ConcurrencyError extends WharfError {
  override name = 'ConcurrencyError'
  readonly stream: string
  readonly expected: number
  readonly actual: number | undefined

  constructor(stream: string, expected: number, actual?: number, cause?: unknown) {
    super('WHARF_CONFLICT', `stream ${stream} changed: expected version ${expected}${actual === undefined ? '' : `, found ${actual}`}`, {
      cause,
      details: { stream, expected, ...(actual === undefined ? {} : { actual }) },
    })
    this.stream = stream
    this.expected = expected
    this.actual = actual
  }
}

export function isWharfError(err: unknown): err is WharfError {
  return err instanceof WharfError
}
