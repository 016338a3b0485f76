/**
 * Following the deploy a command caused: the command is sent with a correlation id of the CLI's own
 * (`X-Request-Id`), the app's events stream (`GET /v1/events/stream`) says when something happened,
 * and the trace of that correlation id (`GET /v1/apps/:app/trace`) says where the deploy stands, until
 * the router serves the new release's containers (every new request reaches them), the deploy
 * fails, or time runs out.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import { progressText, statusText, type Trace } from '../domain/runtime/trace.js'
import { resolveApp } from './app.js'
import { CliError, type ApiClient } from './client.js'
import { openEventStream, sseData } from './sse.js'

/** `--wait-timeout` default, s. */
export const DEFAULT_WAIT_TIMEOUT_S = 300
/** How long a command's change may go without a deploy starting before the CLI stops waiting for one, ms. */
const NO_DEPLOY_GRACE_MS = 20_000
/** The trace is asked again at least this often, ms, even when no event came (a lost stream, a quiet log). */
const RECHECK_MS = 2_000

/** `--no-wait` and `--wait-timeout`, on a command that causes a deploy. */
export function withWait(cmd: Command): Command {
  return cmd
    .option('--no-wait', 'return once the change is recorded, without waiting for the deploy')
    .option('--wait-timeout <s>', `how long to wait for the deploy and the router, s (default ${DEFAULT_WAIT_TIMEOUT_S})`)
}

/** The waiting options as commander gives them. */
export interface WaitOptions {
  app?: string
  wait?: boolean
  waitTimeout?: string
  json?: boolean
}

/** The wait timeout of `--wait-timeout`, ms; throws on a value that is not a whole number of seconds from 1 to 3600. */
export function waitTimeoutMs(opts: WaitOptions): number {
  if (opts.waitTimeout === undefined) return DEFAULT_WAIT_TIMEOUT_S * 1000
  if (!/^[0-9]{1,4}$/.test(opts.waitTimeout) || Number(opts.waitTimeout) < 1 || Number(opts.waitTimeout) > 3600) {
    throw new CliError('WHARF_INVALID', `--wait-timeout: give whole seconds from 1 to 3600, not ${JSON.stringify(opts.waitTimeout)}`)
  }
  return Number(opts.waitTimeout) * 1000
}

/**
 * Runs `send` (the command's API call, given the correlation id to send as its request id), then,
 * unless `--no-wait`, waits until its deploy is served ({@link followDeploy}). Progress goes to
 * stderr, not with `--json`. Answers what `send` answered.
 */
export async function sendAndWait<T>(client: ApiClient, opts: WaitOptions, send: (requestId: string) => Promise<T>): Promise<T> {
  const timeoutMs = waitTimeoutMs(opts)
  const requestId = randomUUID()
  const res = await send(requestId)
  if (opts.wait === false) return res
  await followDeploy(client, {
    app: resolveApp(opts.app),
    correlationId: requestId,
    timeoutMs,
    ...(opts.json ? {} : { progress: (l) => process.stderr.write(`${l}\n`) }),
  })
  return res
}

export interface FollowOptions {
  app: string
  /** The correlation id of the command (its request id) or of a push. */
  correlationId: string
  /** Bound of the whole wait, ms. */
  timeoutMs: number
  /** Told each new progress line (`v12: web 2/3 started`). */
  progress?: (line: string) => void
}

/**
 * Waits until the chain of `correlationId` is served (answers its trace), nothing is deployed (the
 * app has no build, the change ran nothing new), or it failed (`WHARF_DEPLOY_FAILED`, with the
 * reason) or ran out of time (`WHARF_TIMEOUT`).
 */
export async function followDeploy(client: ApiClient, o: FollowOptions): Promise<Trace | undefined> {
  const started = Date.now()
  const deadline = started + o.timeoutMs
  const path = `/v1/apps/${encodeURIComponent(o.app)}/trace?ref=${encodeURIComponent(o.correlationId)}`
  let body: AsyncIterable<Buffer> | undefined
  let events: AsyncIterator<string[]> | undefined
  let next: Promise<IteratorResult<string[]>> | undefined
  const stop = new AbortController()
  let said = ''
  const say = (line: string) => {
    if (line === said) return
    said = line
    o.progress?.(line)
  }
  try {
    for (let round = 0; ; round++) {
      let trace: Trace | undefined
      try {
        trace = await client.call<Trace>('GET', path, undefined, { timeoutMs: 30_000 })
      } catch (err) {
        // Nothing recorded under the id (the command changed nothing): nothing to wait for.
        if (err instanceof CliError && err.code === 'WHARF_NOT_FOUND') return undefined
        throw err
      }
      if (trace.status === 'served') {
        say(`${progressText(trace)}; served by the router`)
        return trace
      }
      if (trace.status === 'no-deploy') {
        say(statusText(trace))
        return trace
      }
      if (trace.status === 'failed') {
        throw new CliError(
          'WHARF_DEPLOY_FAILED',
          `${trace.release === undefined ? 'the deploy' : `the deploy of v${trace.release}`} failed: ${trace.reason ?? 'unknown'}`,
        )
      }
      if (trace.status === 'pending' && Date.now() - started > NO_DEPLOY_GRACE_MS) {
        say(`no deploy started within ${NO_DEPLOY_GRACE_MS / 1000} s: the change runs nothing new`)
        return trace
      }
      if (trace.status === 'deploying') say(progressText(trace))
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new CliError(
          'WHARF_TIMEOUT',
          `not served after ${Math.round(o.timeoutMs / 1000)} s (${statusText(trace)}); \`wharf events:trace ${o.correlationId} -a ${o.app}\` shows where it stands`,
        )
      }
      if (round === 0) {
        // Opened once there is something to wait for, then the trace asked again at once: what happened before the
        // stream began is in it. The stream only wakes the loop up; the trace is the truth, asked on each event and every few seconds.
        body = await openEventStream(client, `/v1/events/stream?app=${encodeURIComponent(o.app)}`, { signal: stop.signal }).catch(() => undefined)
        events = body ? sseData(body)[Symbol.asyncIterator]() : undefined
        continue
      }
      // The timer is cancelled once the race is over, so a finished command does not linger on it.
      const tick = new AbortController()
      const wait = sleep(Math.min(RECHECK_MS, left), 'tick' as const, { signal: tick.signal }).catch(() => 'tick' as const)
      try {
        if (events) {
          next ??= events.next()
          const r = await Promise.race([next, wait])
          if (r !== 'tick') {
            next = undefined
            if (r.done) events = undefined
          }
        } else await wait
      } catch {
        // The stream broke: go on with the timer alone.
        events = undefined
        next = undefined
      } finally {
        tick.abort()
      }
    }
  } finally {
    next?.catch(() => {})
    stop.abort()
  }
}
