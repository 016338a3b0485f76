/**
 * The dashboard's only way to the controller: the same /v1 API as the CLI, signed in by the session
 * cookie (HttpOnly: never visible here). Every change carries the session's CSRF token in a header,
 * without which the controller refuses a cookie-authenticated change.
 */

export interface Session {
  username: string
  admin: boolean
  csrf: string
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

let csrf = ''
let onSignedOut: () => void = () => {}

export function setSession(s: Session | undefined): void {
  csrf = s?.csrf ?? ''
}

/** Called when the controller answers 401 (the session ended: signed out elsewhere, token revoked). */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn
}

export async function api<T = unknown>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET') headers['x-wharf-csrf'] = csrf
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const text = await res.text()
  const data = text ? JSON.parse(text) : undefined
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/v1/auth/session')) onSignedOut()
    throw new ApiError(res.status, data?.code ?? 'WHARF_INTERNAL', data?.message ?? res.statusText)
  }
  return data as T
}

const early = new Map<string, Promise<unknown>>()

/**
 * Starts a GET now, before the session is known, so that it runs beside the session check (the
 * first page needs both): `takeEarly` hands the answer to the first one who asks.
 */
export function fetchEarly(path: string): void {
  const p = api('GET', path)
  // Nobody may take it (no session: the sign-in page shows): not an unhandled rejection.
  p.catch(() => undefined)
  early.set(path, p)
}

/** The answer of an early GET of `path` (once), else a GET now. */
export function takeEarly<T>(path: string): Promise<T> {
  const p = early.get(path)
  early.delete(path)
  return (p as Promise<T> | undefined) ?? api<T>('GET', path)
}

/** `/v1/apps/<app>...`, the app's name escaped for a path. */
export const appPath = (app: string, rest = '') => `/v1/apps/${encodeURIComponent(app)}${rest}`

export interface AppOverview {
  name: string
  owner: string
  url: string
  status: 'up' | 'degraded' | 'deploying' | 'failed' | 'idle' | 'maintenance' | 'new'
  release: { version: number; summary: string; created: string } | null
  processes: Record<string, { running: number; desired: number }>
  lastDeploy: { outcome: 'started' | 'completed' | 'failed'; release: number; at: string } | null
}

export interface Release {
  version: number
  summary: string
  by: string
  created: string
  image: string | null
  rollbackOf: number | null
  configKeys: string[]
}

export interface EventView {
  seq: number
  id: string
  type: string
  app?: string
  actor: string
  occurredAt: string
  correlationId: string
  data: Record<string, unknown>
}

export interface TraceStep {
  seq: number
  type: string
  occurredAt: string
  offsetMs: number
  stepMs: number
  detail: string
}

export interface Trace {
  app: string
  correlationId: string
  release?: number
  status: 'served' | 'failed' | 'deploying' | 'pending' | 'no-deploy'
  reason?: string
  totalMs: number
  steps: TraceStep[]
}

export interface LogLine {
  id: string
  time: string
  source: string
  type?: string
  number?: number
  text: string
}

/** "3 min ago" for an ISO time. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}
