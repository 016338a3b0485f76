/**
 * For integration tests and the benchmark: the webhooks service on a test controller's store and
 * database (short retry durations), and a local subscriber that records what it is sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { outboundPolicy } from '../../core/outbound.js'
import type { TestController } from '../controller/testing.js'
import { Webhooks } from './webhooks.js'
import type { WebhookOptions } from './worker.js'

export async function startTestWebhooks(t: Test, c: TestController, opts: Partial<WebhookOptions> = {}): Promise<Webhooks> {
  const w = new Webhooks({
    store: c.deps.store,
    pool: c.deps.pool,
    log: c.deps.log,
    policy: outboundPolicy(c.deps.cfg),
    opts: { minBackoffMs: 50, maxBackoffMs: 400, recordMs: 100, timeoutMs: 1_000, accessCacheMs: 0, ...opts },
  })
  await w.start()
  t.teardown(() => w.stop())
  return w
}

/** One POST a subscriber got. */
export interface Received {
  path: string
  headers: Record<string, string>
  body: string
  at: number
}

/**
 * A subscriber on 127.0.0.1: records each POST, then answers as `answer` says (default 204). Listens on
 * `port` (0: a free one); `close` and `listen` again simulate a subscriber that is down for a while.
 */
export async function subscriber(
  t: Test,
  answer: (req: IncomingMessage, res: ServerResponse, got: Received) => void = (_req, res) => void res.writeHead(204).end(),
  port = 0,
) {
  const got: Received[] = []
  let server: Server | undefined
  const listen = async (on = port) => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (d: Buffer) => chunks.push(d))
      req.on('end', () => {
        const r: Received = { path: req.url ?? '', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString(), at: Date.now() }
        got.push(r)
        answer(req, res, r)
      })
    })
    await new Promise<void>((resolve) => server!.listen(on, '127.0.0.1', () => resolve()))
    port = (server.address() as { port: number }).port
  }
  const close = async () => {
    if (!server) return
    const s = server
    server = undefined
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  t.teardown(close)
  await listen()
  return {
    got,
    listen,
    close,
    get port() {
      return port
    },
  }
}
