import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { request } from 'undici'

/** An error the CLI prints as one line, `wharf: <message> (<CODE>)`, and exits 1 on. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** What `auth:login` keeps: `~/.wharf/client.json` (mode 600). */
export interface ClientState {
  url?: string
  username?: string
  token?: string
}

export function statePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HOME || homedir(), '.wharf', 'client.json')
}

export function loadState(env: NodeJS.ProcessEnv = process.env): ClientState {
  try {
    return JSON.parse(readFileSync(statePath(env), 'utf8')) as ClientState
  } catch {
    return {}
  }
}

export function saveState(state: ClientState, env: NodeJS.ProcessEnv = process.env): void {
  const file = statePath(env)
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
}

/**
 * The controller API as the CLI sees it. `WHARF_URL` and `WHARF_TOKEN` override the saved state.
 * Every non-2xx answer becomes a CliError with the API's code and message.
 */
export class ApiClient {
  constructor(
    readonly url: string | undefined,
    readonly token: string | undefined,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
    const state = loadState(env)
    return new ApiClient(env.WHARF_URL || state.url, env.WHARF_TOKEN || state.token)
  }

  /** A client for another URL (register and login name the controller). */
  withUrl(url: string, token?: string): ApiClient {
    return new ApiClient(url.replace(/\/+$/, ''), token)
  }

  /**
   * `timeoutMs`: how long the answer may take, default 300_000 (long admin work passes more).
   * `onHeaders`: given the headers of a 2xx answer (what the body does not say, e.g. the point of an `--at` answer).
   */
  async call<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    opts: { timeoutMs?: number; onHeaders?: (headers: Record<string, string | string[] | undefined>) => void } = {},
  ): Promise<T> {
    if (!this.url) throw new CliError('WHARF_INVALID', 'no controller: run `wharf auth:login <url>` first (or set WHARF_URL)')
    let res
    try {
      res = await request(`${this.url}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(opts.timeoutMs ? { headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs } : {}),
      })
    } catch (err) {
      throw new CliError('WHARF_UNAVAILABLE', `cannot reach the controller at ${this.url}: ${(err as Error).message}`)
    }
    const text = await res.body.text()
    let json: unknown
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    if (res.statusCode >= 400) {
      const e = json as { code?: string; message?: string } | undefined
      throw new CliError(e?.code ?? `HTTP_${res.statusCode}`, e?.message ?? `the controller answered ${res.statusCode}`)
    }
    opts.onHeaders?.(res.headers)
    return json as T
  }
}
