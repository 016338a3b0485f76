/**
 * One POST of one event to one hook, in the Standard Webhooks format (https://www.standardwebhooks.com):
 * headers `webhook-id` (the event's id, the same on every attempt), `webhook-timestamp` (seconds) and
 * `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the hook's secret,
 * made by the `standardwebhooks` package). Bounded in time (connect, headers and the whole request)
 * and in memory (the answer's body is read up to a cap, then the connection is dropped); redirects
 * are not followed.
 */
import { isIP } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { Agent, request } from 'undici'
import { checkAddress, outboundLookup, urlPort, type OutboundPolicy, type Resolver } from '../../core/outbound.js'

/** Bounds of one delivery. */
export interface SendOptions {
  /** Longest one attempt may take, from connecting to the end of the answer, ms, default 10_000. */
  timeoutMs: number
  /** Bytes of an answer's body read (then the connection is closed), default 64 KiB. */
  maxBodyBytes: number
}

/** What one attempt came to. */
export interface SendResult {
  /** The HTTP status; 0 when there was no answer. */
  status: number
  durationMs: number
  /** Set when the attempt failed: why, in one line. */
  error?: string
}

/** A hook's connection to its subscriber: one keep-alive connection (plus one for redeliveries), signing with its secret. */
export class HookClient {
  readonly #url: URL
  readonly #webhook: Webhook
  readonly #agent: Agent
  readonly #policy: OutboundPolicy
  readonly #opts: SendOptions

  constructor(url: string, secret: string, policy: OutboundPolicy, opts: SendOptions, resolve?: Resolver) {
    this.#url = new URL(url)
    this.#webhook = new Webhook(secret)
    this.#policy = policy
    this.#opts = opts
    // The address is checked as it is connected to (a name that rebinds to a refused address is caught).
    this.#agent = new Agent({
      connections: 2,
      pipelining: 1,
      connect: { timeout: opts.timeoutMs, lookup: outboundLookup(policy, urlPort(this.#url), resolve) },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    })
  }

  /** Signs and POSTs `body` (the event as JSON) as message `id`; never throws. */
  async send(id: string, body: string, signal?: AbortSignal): Promise<SendResult> {
    const started = performance.now()
    const took = () => Math.round(performance.now() - started)
    const deadline = AbortSignal.timeout(this.#opts.timeoutMs)
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline
    let status = 0
    try {
      // A literal address is never looked up, so it is checked here.
      const host = this.#url.hostname.replace(/^\[|\]$/g, '')
      if (isIP(host)) checkAddress(this.#policy, host, host, urlPort(this.#url))
      const now = new Date()
      const res = await request(this.#url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'wharf-webhooks',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': this.#webhook.sign(id, now, body),
        },
        body,
        signal: abort,
      })
      status = res.statusCode
      // Read up to the cap and dropped: a larger answer (1 GB) is cut off there, its connection closed, and the attempt failed.
      let read = 0
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length
        if (read > this.#opts.maxBodyBytes) {
          res.body.destroy()
          return { status, durationMs: took(), error: `the answer's body is larger than ${this.#opts.maxBodyBytes} bytes` }
        }
      }
      if (status >= 200 && status < 300) return { status, durationMs: took() }
      return {
        status,
        durationMs: took(),
        error: `the subscriber answered HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      const why = deadline.aborted ? `no complete answer within ${this.#opts.timeoutMs} ms` : `${e.code ? `${e.code}: ` : ''}${e.message}`
      return { status, durationMs: took(), error: why.slice(0, 300) }
    }
  }

  async close(): Promise<void> {
    await this.#agent.destroy().catch(() => {})
  }
}
