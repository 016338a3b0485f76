/**
 * The health of a service that runs in another process of this host (the router in a process of its
 * own), over a unix socket: that process serves `GET /healthz` there, the controller's `/healthz` and
 * infra's status ask it. 200 with the report when ok, 503 with it when not.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import { dirname } from 'node:path'

/** A service's health: what `/healthz` reports of it (`services/runtime.ts` uses it for every service). */
export interface HealthReport {
  ok: boolean
  detail?: Record<string, unknown>
  /** Why it is not ok, one line. */
  reason?: string
}

export interface HealthSocket {
  close(): Promise<void>
}

/**
 * Serves `GET /healthz` on the unix socket `path` (mode 600; its directory made when missing, a socket
 * left by a process that died removed first): `check()`'s report, 200 when ok, 503 when not.
 */
export async function serveHealthSocket(path: string, check: () => Promise<HealthReport>): Promise<HealthSocket> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'WHARF_NOT_FOUND', message: 'only GET /healthz here' }))
      return
    }
    check().then(
      (h) => res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h)),
      (err: Error) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, reason: err.message || err.name })),
    )
  })
  server.requestTimeout = 10_000
  mkdirSync(dirname(path), { recursive: true })
  rmSync(path, { force: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => resolve())
  })
  chmodSync(path, 0o600)
  return {
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/**
 * Asks the health of the process serving on the unix socket `path`; a socket that does not answer
 * within `timeoutMs` is not ok, with the reason.
 */
export function askHealthSocket(path: string, timeoutMs = 1_500): Promise<HealthReport> {
  return new Promise((resolve) => {
    const req = request({ socketPath: path, method: 'GET', path: '/healthz', timeout: timeoutMs, headers: { host: 'wharf-health' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        if (text.length < 100_000) text += c
      })
      res.on('end', () => {
        try {
          const h = JSON.parse(text) as HealthReport
          resolve(typeof h.ok === 'boolean' ? h : { ok: false, reason: `${path} answered ${res.statusCode} without a report` })
        } catch {
          resolve({ ok: false, reason: `${path} answered ${res.statusCode} without a report` })
        }
      })
      res.on('error', (err) => resolve({ ok: false, reason: `${path}: ${err.message}` }))
    })
    req.on('timeout', () => {
      resolve({ ok: false, reason: `no answer on ${path} within ${timeoutMs} ms` })
      req.destroy()
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, reason: `no process answers on ${path} (${err.code ?? err.message})` }))
    req.end()
  })
}
