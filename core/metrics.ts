/**
 * Prometheus metrics of one Wharf process (`prom-client`): one registry per process, the families every
 * service records into, and the text served at `/metrics` (by the controller, or by the metrics
 * listener of a process that runs no controller; see services/metrics.ts).
 *
 * Names follow Prometheus' conventions: `wharf_` prefix, `_total` for counters, base units
 * (`_seconds`). Labels are bounded: routes are fastify's route patterns (never the raw URL), event
 * types come from the catalogue, outcomes are fixed words, and per-app labels go through
 * {@link BoundedLabel} (the first `maxApps` apps seen by this process keep their name, the rest are
 * counted under `_other`).
 */
import client from 'prom-client'

/** The registry of this process: every family below, and Node's process metrics. */
export const registry = new client.Registry()
client.collectDefaultMetrics({ register: registry })

/** Buckets for things that take from a millisecond to a minute (HTTP, route updates, lock waits), seconds. */
const FAST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Buckets for builds and deploys, seconds. */
const SLOW_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800]

/**
 * Keeps a label's values bounded: the first `max` distinct values keep their name, any later one
 * is `_other`. Per process, so a restart starts counting again (Prometheus sees a reset counter).
 */
export class BoundedLabel {
  readonly #seen = new Set<string>()
  constructor(public max: number) {}
  of(value: string): string {
    if (this.#seen.has(value)) return value
    if (this.#seen.size >= this.max) return OTHER
    this.#seen.add(value)
    return value
  }
}
/** The label value of everything past a {@link BoundedLabel}'s bound. */
export const OTHER = '_other'

/** Distinct app names a process labels metrics with, default 500 (`WHARF_METRICS_MAX_APPS`, read by main.ts). */
export const appLabel = new BoundedLabel(500)
/** Distinct consumer names a process labels metrics with (one per projection, service and lagging hook). */
export const consumerLabel = new BoundedLabel(200)

export const httpRequests = new client.Counter({
  name: 'wharf_http_requests_total',
  help: 'HTTP requests answered by the controller, by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
})
export const httpDuration = new client.Histogram({
  name: 'wharf_http_request_duration_seconds',
  help: 'Time to answer an HTTP request (to the end of the headers for streams), by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: FAST_BUCKETS,
  registers: [registry],
})
export const eventsAppended = new client.Counter({
  name: 'wharf_events_appended_total',
  help: 'Events appended to the event log by this process, by type',
  labelNames: ['type'] as const,
  registers: [registry],
})
export const consumerPending = new client.Gauge({
  name: 'wharf_consumer_pending_messages',
  help: 'Messages of the event log not yet delivered to a durable consumer of this process, as of its last delivery',
  labelNames: ['consumer'] as const,
  registers: [registry],
})
export const builds = new client.Counter({
  name: 'wharf_builds_total',
  help: 'Builds finished by this process, by outcome (succeeded, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
})
export const buildDuration = new client.Histogram({
  name: 'wharf_build_duration_seconds',
  help: 'BuildStarted to BuildSucceeded or BuildFailed, for builds started by this process, by outcome',
  labelNames: ['outcome'] as const,
  buckets: SLOW_BUCKETS,
  registers: [registry],
})
export const deploys = new client.Counter({
  name: 'wharf_deploys_total',
  help: 'Deploys finished by this process, by outcome (completed, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
})
export const deployDuration = new client.Histogram({
  name: 'wharf_deploy_duration_seconds',
  help: 'DeployStarted to DeployCompleted or DeployFailed, for deploys started by this process, by outcome',
  labelNames: ['outcome'] as const,
  buckets: SLOW_BUCKETS,
  registers: [registry],
})
export const routeUpdates = new client.Counter({
  name: 'wharf_route_updates_total',
  help: 'Route updates of the router, by result (applied, unchanged, failed)',
  labelNames: ['result'] as const,
  registers: [registry],
})
export const routeUpdateDuration = new client.Histogram({
  name: 'wharf_route_update_duration_seconds',
  help: 'From the event that changed routes to nginx answering the new routes (or refusing them), by result',
  labelNames: ['result'] as const,
  buckets: FAST_BUCKETS,
  registers: [registry],
})
export const logLinesIn = new client.Counter({
  name: 'wharf_log_lines_received_total',
  help: 'Log lines the logger received live (not the replay at its start), by app (bounded, see WHARF_METRICS_MAX_APPS) and source',
  labelNames: ['app', 'source'] as const,
  registers: [registry],
})
export const logLinesDropped = new client.Counter({
  name: 'wharf_log_lines_dropped_total',
  help: 'Log lines dropped, by app (bounded; "-" when no app is known) and reason (over_rate, unknown_app, bad_token, malformed, drain_full)',
  labelNames: ['app', 'reason'] as const,
  registers: [registry],
})
export const drainDeliveries = new client.Counter({
  name: 'wharf_drain_deliveries_total',
  help: 'Batches of log lines sent to drains, by drain kind (syslog, syslog+tls, https) and outcome (ok, failed)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
})
export const webhookDeliveries = new client.Counter({
  name: 'wharf_webhook_deliveries_total',
  help: 'Webhook delivery attempts, by outcome (ok: a 2xx; failed: anything else)',
  labelNames: ['outcome'] as const,
  registers: [registry],
})
export const webhookDuration = new client.Histogram({
  name: 'wharf_webhook_delivery_duration_seconds',
  help: 'Time of one webhook delivery attempt, by outcome',
  labelNames: ['outcome'] as const,
  buckets: FAST_BUCKETS,
  registers: [registry],
})
export const pushLockWaits = new client.Counter({
  name: 'wharf_push_lock_waits_total',
  help: 'Pushes that found another push to the same app running and waited for it',
  registers: [registry],
})
export const pushLockWait = new client.Histogram({
  name: 'wharf_push_lock_wait_seconds',
  help: 'Time a push waited for the push lock of its app (0 when it was free)',
  buckets: FAST_BUCKETS,
  registers: [registry],
})

/**
 * Projection lag per read model, read when scraped: `lag()` answers the events of the log each
 * projection has not applied yet. Set by the process that runs the projector.
 */
export function projectionLagGauge(lag: () => Promise<Record<string, number>>): void {
  registry.removeSingleMetric('wharf_projection_lag_events')
  new client.Gauge({
    name: 'wharf_projection_lag_events',
    help: 'Events of the log a read model has not applied yet (last seq of the log minus its checkpoint), by projection',
    labelNames: ['projection'] as const,
    registers: [registry],
    async collect() {
      this.reset()
      for (const [projection, n] of Object.entries(await lag())) this.set({ projection }, n)
    },
  })
}

/**
 * Parts of the platform up (1) or down (0), read when scraped (admin:status's checks); set by the
 * controller's process.
 */
export function partsUpGauge(parts: () => Promise<{ name: string; up: boolean }[]>): void {
  registry.removeSingleMetric('wharf_part_up')
  new client.Gauge({
    name: 'wharf_part_up',
    help: 'Whether a part of the platform answers (1) or not (0), as admin:status sees it',
    labelNames: ['part'] as const,
    registers: [registry],
    async collect() {
      this.reset()
      for (const p of await parts()) this.set({ part: p.name }, p.up ? 1 : 0)
    },
  })
}

/** Bounded map of start times (a build's or deploy's), so a finish can be timed; the oldest go first. */
const MAX_STARTS = 10_000
const starts = new Map<string, number>()
function noteStart(key: string, at: number): void {
  starts.delete(key)
  starts.set(key, at)
  if (starts.size > MAX_STARTS) starts.delete(starts.keys().next().value!)
}
function takeStart(key: string): number | undefined {
  const at = starts.get(key)
  starts.delete(key)
  return at
}

/** The part of an appended event the metrics read. */
export interface AppendedEvent {
  type: string
  stream: string
  occurredAt: string
  data: unknown
}

/**
 * Counts events appended by this process, and from them builds and deploys by outcome with their
 * durations (the start and the finish appended by this process: a finish whose start another
 * process appended is counted, not timed).
 */
export function observeAppended(events: readonly AppendedEvent[]): void {
  for (const e of events) {
    eventsAppended.inc({ type: e.type })
    const at = Date.parse(e.occurredAt)
    const d = (e.data ?? {}) as { app?: string; release?: number }
    switch (e.type) {
      case 'BuildStarted':
        noteStart(`build ${e.stream}`, at)
        break
      case 'BuildSucceeded':
      case 'BuildFailed': {
        const outcome = e.type === 'BuildSucceeded' ? 'succeeded' : 'failed'
        builds.inc({ outcome })
        const start = takeStart(`build ${e.stream}`)
        if (start !== undefined) buildDuration.observe({ outcome }, Math.max(0, at - start) / 1000)
        break
      }
      case 'DeployStarted':
        noteStart(`deploy ${d.app} ${d.release}`, at)
        break
      case 'DeployCompleted':
      case 'DeployFailed': {
        const outcome = e.type === 'DeployCompleted' ? 'completed' : 'failed'
        deploys.inc({ outcome })
        const start = takeStart(`deploy ${d.app} ${d.release}`)
        if (start !== undefined) deployDuration.observe({ outcome }, Math.max(0, at - start) / 1000)
        break
      }
    }
  }
}

/** The text format of every family of this process (`/metrics`). */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() }
}

/** Whether a socket's remote address is this host's loopback (IPv4, IPv6, or IPv4-mapped). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const a = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)
}

// The outcome series exist from the start (at 0), so a rate or an alert sees the first one.
for (const outcome of ['succeeded', 'failed']) builds.inc({ outcome }, 0)
for (const outcome of ['completed', 'failed']) deploys.inc({ outcome }, 0)
for (const outcome of ['ok', 'failed']) webhookDeliveries.inc({ outcome }, 0)
for (const result of ['applied', 'unchanged', 'failed']) routeUpdates.inc({ result }, 0)
pushLockWaits.inc(0)
