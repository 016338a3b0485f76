/**
 * An HTTP/1.1 client for loops of requests through the router (tests and bench:router), loopback
 * only. It keeps connections alive and behaves as browsers and curl do when a server closes an idle
 * kept-alive connection just as a request goes out on it (nginx closes its idle connections on every
 * reload): a GET that fails on a reused connection before any byte of an answer is sent again on
 * another connection (RFC 9112 §9.3.1; Node's `request.reusedSocket`). Such a retry is counted, never
 * hidden; a failure on a new connection, a timeout or a non-2xx answer is a failed request.
 */
import { Agent, request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Answer {
  status: number
  body: string
}

/**
 * GET `path` at 127.0.0.1:`port` with `Host: host` through `agent` (or a new connection when
 * `false`); answers the status and body, and how many times it was sent again on a closed
 * kept-alive connection.
 */
export function get(
  port: number,
  host: string,
  path = '/',
  agent: Agent | false = false,
  timeoutMs = 5_000,
  /** False: a request failing on a reused connection is a failure (as wrk and many load balancers count it). */
  retry = true,
): Promise<Answer & { retried: number }> {
  return new Promise((resolve, reject) => {
    let retried = 0
    const send = (via: Agent | false) => {
      let answered = false
      const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: via, timeout: timeoutMs }, (res) => {
        answered = true
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, retried }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Once, and on a new connection: the agent's other idle connections were likely closed too.
        if (retry && !answered && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && retried === 0) {
          retried++
          send(false)
        } else
          reject(
            Object.assign(
              new Error(
                `${err.message} (${err.code ?? 'no code'}, ${req.reusedSocket ? 'a reused connection' : 'a new connection'}${retried ? ', sent again' : ''}${answered ? ', after the answer began' : ''})`,
              ),
              { code: err.code },
            ),
          )
      })
      req.end()
    }
    send(agent)
  })
}

export interface LoopCounts {
  ok: number
  failed: number
  /** Requests sent again because their kept-alive connection was closed under them. */
  retried: number
  /** The bodies of the 2xx answers (e.g. which container answered). */
  bodies: Set<string>
  /** The longest a 2xx answer took, ms (a request nginx sent again after its peer's host went silent takes seconds). */
  slowestMs: number
}

export interface RequestLoop {
  counts: LoopCounts
  /** One line per failed request: when and why. */
  failures: string[]
  stop(): Promise<void>
}

/**
 * GETs `path` with `Host: host`, one every `intervalMs` (0: as fast as `connections` requests at
 * once allow), on up to `connections` kept-alive connections, until stopped; counts every answer.
 */
export function requestLoop(
  port: number,
  host: string,
  opts: { path?: string; intervalMs?: number; connections?: number; timeoutMs?: number; retry?: boolean } = {},
): RequestLoop {
  const { path = '/', intervalMs = 0, connections = 16, timeoutMs = 15_000, retry = true } = opts
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const counts: LoopCounts = { ok: 0, failed: 0, retried: 0, bodies: new Set(), slowestMs: 0 }
  const failures: string[] = []
  let stop = false
  const one = () => {
    const t0 = performance.now()
    return get(port, host, path, agent, timeoutMs, retry).then(
      (a) => {
        counts.retried += a.retried
        if (a.status >= 200 && a.status < 300) {
          counts.ok++
          counts.slowestMs = Math.max(counts.slowestMs, performance.now() - t0)
          counts.bodies.add(a.body.trim())
        } else {
          counts.failed++
          failures.push(`${new Date().toISOString()} ${a.status} ${a.body.slice(0, 100)}`)
        }
      },
      (err: Error) => {
        counts.failed++
        failures.push(`${new Date().toISOString()} ${err.message}`)
      },
    )
  }
  const loop = (async () => {
    if (intervalMs <= 0) {
      // Closed loop: each of `connections` workers sends its next request when the last is answered.
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (!stop) await one()
        }),
      )
    } else {
      const inflight = new Set<Promise<void>>()
      let next = performance.now()
      while (!stop) {
        const p = one()
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
        next += intervalMs
        await sleep(Math.max(0, next - performance.now()))
      }
      await Promise.all(inflight)
    }
    agent.destroy()
  })()
  return {
    counts,
    failures,
    async stop() {
      stop = true
      await loop
    },
  }
}
