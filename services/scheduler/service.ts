import { registryLogin } from '../../core/config.js'
import type pg from 'pg'
import { DockerEngine } from '../../core/engine/docker.js'
import { isEvent } from '../../domain/index.js'
import { startConsumer } from '../../events/consumer.js'
import type { RecordedEvent } from '../../events/index.js'
import { readModelsHandling } from '../../projections/index.js'
import { CheckpointWatcher } from '../../projections/watcher.js'
import type { ServiceDefinition } from '../runtime.js'
import { watchLostHosts } from './hosts.js'
import { Scheduler, type SchedulerDeps, type SchedulerOptions } from './scheduler.js'

/** The durable subscription of the scheduler (one scheduler per namespace at a time). */
export const SCHEDULER_DURABLE = 'scheduler'

/** The read models a reconcile reads: an event is handled once both have applied it. */
const READ_MODELS = ['releases', 'formation'] as const

/** Events that change what runs. */
const HANDLED = ['ReleaseCreated', 'FormationScaled', 'RestartRequested', 'AppDestroyed'] as const

/** Event type -> the read models of {@link READ_MODELS} that apply it. */
export function readModelsByType(): Map<string, string[]> {
  return readModelsHandling(READ_MODELS)
}

export interface RunningScheduler {
  scheduler: Scheduler
  /** Stops taking events and watching deploys; what was handled is acked, the rest is delivered again. */
  stop(): Promise<void>
  /** Stops at once, as a crash would (nothing awaited: a deploy in progress is left to the next scheduler). */
  kill(): Promise<void>
}

export interface StartSchedulerOptions extends SchedulerOptions {
  /** Pause before an event whose handling failed for a passing reason is tried again, ms, default 1_000. */
  retryMs?: number
  /** The durable subscription's name, default {@link SCHEDULER_DURABLE} (a benchmark's own scheduler takes another). */
  durableName?: string
  /** Only apps this answers true for are scheduled (a benchmark beside a running platform); default all. */
  only?: (app: string) => boolean
  /** How often the swarm's nodes are checked for lost hosts (whose containers are then announced gone), ms, default 2_000; 0: never. */
  lostHostsMs?: number
}

/**
 * What a batch of handled events asks, per app in order of first mention: its events in log order,
 * each run of releases and scales (`ReleaseCreated`, `FormationScaled`) kept as its last one only
 * (one reconcile reads the newest read models for all of them).
 */
export function plan(events: readonly RecordedEvent[]): Map<string, RecordedEvent[]> {
  const out = new Map<string, RecordedEvent[]>()
  for (const e of events) {
    if (!isEvent(e, HANDLED)) continue
    let steps = out.get(e.data.app)
    if (!steps) out.set(e.data.app, (steps = []))
    const reconciles = (x: RecordedEvent | undefined) => x?.type === 'ReleaseCreated' || x?.type === 'FormationScaled'
    if (reconciles(e) && reconciles(steps.at(-1))) steps[steps.length - 1] = e
    else steps.push(e)
  }
  return out
}

/**
 * Starts the scheduler: reconciles every app (picking up deploys a stopped scheduler left), then a
 * durable subscription reconciles the app of each `ReleaseCreated`, `FormationScaled`,
 * `RestartRequested` and `AppDestroyed` once the read models have it. An event is acked after its
 * changes are applied to Swarm (not after the deploy converges: that is watched, and resumed on start).
 */
export async function startScheduler(deps: SchedulerDeps & { pool: pg.Pool }, opts: StartSchedulerOptions = {}): Promise<RunningScheduler> {
  const scheduler = new Scheduler(deps, opts)
  const watcher = new CheckpointWatcher({ pool: deps.pool, projections: READ_MODELS })
  const only = opts.only ?? (() => true)
  const waitsFor = readModelsByType()
  const appOf = (e: RecordedEvent) => (isEvent(e, HANDLED) ? e.data.app : undefined)
  const consumer = await startConsumer({
    store: deps.store,
    durableName: opts.durableName ?? SCHEDULER_DURABLE,
    // Events from now on come through the subscription; what came before is in the read models.
    from: 'end',
    types: HANDLED,
    filter: (e) => {
      const app = appOf(e)
      return !!app && only(app)
    },
    catchUp: async () => {
      for (const app of (await scheduler.apps()).filter(only)) {
        await scheduler.reconcile(app, { resume: true }).catch((err) => deps.log.error({ err, app }, 'scheduler: cannot reconcile an app at start'))
      }
      deps.log.info({ namespace: deps.namespace }, 'scheduler: reconciled every app')
    },
    retryMs: opts.retryMs ?? 1_000,
    log: deps.log,
    name: 'scheduler',
    // A batch: what a scheduler that was busy finds waiting. One reconcile per app stands for every
    // release and scale of the app in it (a reconcile deploys what the read models say now, the newest);
    // restarts and destroys keep their place. The batch is acked once its changes are asked of Swarm, or
    // deferred behind the app's deploy in progress (see Scheduler.request): a scheduler that stops before
    // a deferred one runs reconciles every app when it starts again.
    handleBatch: async (events) => {
      const handled = events.filter((e) => isEvent(e, HANDLED))
      if (handled.length === 0) return
      const last = handled.at(-1)!.seq
      // Only the read models that apply these types: the others' checkpoints pass them lazily (up to
      // 100 ms later), and every earlier event they apply that changes what runs was waited for in its turn.
      const models = [...new Set(handled.flatMap((e) => waitsFor.get(e.type) ?? READ_MODELS))]
      await watcher.waitFor(last, { timeoutMs: 30_000, projections: models })
      for (const [app, steps] of plan(handled)) {
        for (const step of steps) {
          if (step.type === 'AppDestroyed') await scheduler.destroy(app)
          else if (isEvent(step, 'RestartRequested')) await scheduler.restart(app, step.data.type, step)
          else await scheduler.request(app, step)
        }
      }
    },
  })
  const lostHostsMs = opts.lostHostsMs ?? 2_000
  const lost = lostHostsMs > 0 ? watchLostHosts({ docker: deps.docker, store: deps.store, pool: deps.pool, log: deps.log }, lostHostsMs) : undefined
  return {
    scheduler,
    async stop() {
      await lost?.stop()
      await consumer.stop()
      await scheduler.stop()
      await watcher.close()
    },
    async kill() {
      void lost?.stop()
      void scheduler.stop()
      await consumer.kill()
      await watcher.close().catch(() => {})
    },
  }
}

/** The scheduler: releases and formations -> Docker Swarm services, with deploy events. */
export const scheduler: ServiceDefinition = {
  name: 'scheduler',
  description: 'releases and formations -> Docker Swarm services (rolling, health-checked)',
  async start({ cfg, log, store, pool }) {
    if (!cfg.dockerHost) throw new Error('WHARF_DOCKER_HOST is not set (make up sets it)')
    const running = await startScheduler(
      {
        store,
        pool,
        docker: DockerEngine.at(cfg.dockerHost, registryLogin(cfg)),
        namespace: cfg.namespace,
        registry: `127.0.0.1:${cfg.ports.registry}`,
        log: log.child({ service: 'scheduler' }),
      },
      { spec: { drainMs: cfg.drainMs, drainMaxMs: cfg.drainMaxMs } },
    )
    return { stop: () => running.stop() }
  },
}
