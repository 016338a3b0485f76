/**
 * `/metrics` of a process that runs no controller (`--only router`, `--only logspout` ...): a small
 * HTTP listener on `host:port` (`WHARF_METRICS_PORT`) that serves this process's registry and
 * nothing else. A process with the controller serves `/metrics` on the controller's port instead.
 * Only direct connections from this host are answered (403 otherwise): scrape from the same host.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isLoopback, metricsText } from '../core/metrics.js'

export interface MetricsListener {
  /** The port it listens on (the one asked for, or the one picked for 0). */
  port: number
  close(): Promise<void>
}

export async function listenMetrics(host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'WHARF_NOT_FOUND', message: 'only GET /metrics here' }))
      return
    }
    if (!isLoopback(req.socket.remoteAddress) || req.headers['x-forwarded-for'] !== undefined) {
      res
        .writeHead(403, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: 'WHARF_FORBIDDEN', message: '/metrics answers connections from this host only' }))
      return
    }
    metricsText().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'WHARF_INTERNAL', message: err.message })),
    )
  })
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}
