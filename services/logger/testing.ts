/**
 * For integration tests: a logger on a test controller's event store, database and log stream (its
 * syslog receiver on a free port), stopped in teardown; and a reader of the controller's live log
 * stream (server-sent events).
 */
import type { Test } from 'tap'
import { request } from 'undici'
import { sseData } from '../../cli/sse.js'
import { outboundPolicy } from '../../core/outbound.js'
import type { LogLine } from '../../logs/index.js'
import type { TestController } from '../controller/testing.js'
import { LogServer, type LogServerOptions } from './logger.js'

export async function startTestLogger(t: Test, c: TestController, opts: Partial<LogServerOptions> = {}): Promise<LogServer> {
  const logs = c.deps.logger!.logs
  await logs.ensure({ maxAgeMs: 3_600_000, maxBytes: 256 * 1024 * 1024 })
  const server = await LogServer.start({
    logs,
    store: c.deps.store,
    pool: c.deps.pool,
    log: c.deps.log,
    appLines: 1_000,
    appRate: 10_000,
    syslog: { host: '127.0.0.1', port: 0 },
    inputSecret: c.deps.cfg.logs.inputSecret,
    retentionMs: 3_600_000,
    drainsEveryMs: 1_000,
    ...opts,
    // Whatever else the test sets for its drains, they go where the controller's WHARF_OUTBOUND_ALLOW lets them.
    drains: { minBackoffMs: 50, maxBackoffMs: 200, ...opts.drains, policy: opts.drains?.policy ?? outboundPolicy(c.deps.cfg) },
  })
  t.teardown(() => server.stop())
  return server
}

/** A client of `GET /v1/apps/:app/logs/stream`: the lines it got so far, and a way to end it. */
export async function followLogs(c: TestController, token: string, app: string, query = ''): Promise<{ lines: LogLine[]; status: number; close(): void }> {
  const abort = new AbortController()
  const res = await request(`${c.url}/v1/apps/${app}/logs/stream${query}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
    bodyTimeout: 0,
  })
  const lines: LogLine[] = []
  if (res.statusCode === 200) {
    void (async () => {
      try {
        for await (const data of sseData(res.body)) lines.push(...data.map((d) => JSON.parse(d) as LogLine))
      } catch {
        // aborted
      }
    })()
  } else await res.body.dump()
  return { lines, status: res.statusCode, close: () => abort.abort() }
}
