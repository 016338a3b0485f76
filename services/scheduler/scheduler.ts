/**
 * The scheduler's reconcile loop: for an app, desired services (read models) against actual
 * (Swarm), apply the difference, announce the deploy on `runtime.<app>` and watch it converge.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type Docker from 'dockerode'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { dataOf, isEvent } from '../../domain/index.js'
import { streamId, type EventStore, type RecordedEvent } from '../../events/index.js'
import { deployFormation, desiredServices, diff, type DesiredService, type ReleaseView, type SpecOptions } from './model.js'
import { applyChange, listServices, markFailed, removeAppImages, restartService, serviceProgress, type ProgressOptions } from './swarm.js'

export interface SchedulerOptions {
  /** How long a deploy may take before `DeployFailed`, ms, default 60_000. */
  deployTimeoutMs?: number
  /** How often a deploy's progress is read, ms, default 250. */
  pollMs?: number
  /** Tunables of the services' specs (grace period, monitors, health check timing). */
  spec?: Partial<SpecOptions>
  progress?: ProgressOptions
}

export interface SchedulerDeps {
  store: EventStore
  pool: pg.Pool
  docker: Docker
  namespace: string
  /** `127.0.0.1:<port>` of the registry the apps' images come from (to remove them with the app). */
  registry: string
  log: Logger
}

const ACTOR = 'system:scheduler'

/** One app's deploy being watched; a newer deploy of the app supersedes it. */
interface Watch {
  cancelled: boolean
  done: Promise<void>
}

/** The reconcile loop of one namespace. Calls for one app run one at a time (a queue per app). */
export class Scheduler {
  readonly #d: SchedulerDeps
  readonly #o: Required<Omit<SchedulerOptions, 'spec' | 'progress'>> & Pick<SchedulerOptions, 'spec' | 'progress'>
  readonly #queues = new Map<string, Promise<unknown>>()
  readonly #watches = new Map<string, Watch>()
  #stopped = false

  constructor(deps: SchedulerDeps, opts: SchedulerOptions = {}) {
    this.#d = deps
    this.#o = { deployTimeoutMs: opts.deployTimeoutMs ?? 60_000, pollMs: opts.pollMs ?? 250, spec: opts.spec, progress: opts.progress }
  }

  /** Runs `fn` after every earlier call for `app` has finished. */
  #serial<T>(app: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(app) ?? Promise.resolve()
    const next = prev.catch(() => {}).then(fn)
    this.#queues.set(app, next)
    void next.finally(() => this.#queues.get(app) === next && this.#queues.delete(app)).catch(() => {})
    return next
  }

  /** The app's current release (when it has an image) and formation, from the read models. */
  async readApp(app: string): Promise<{ release: ReleaseView | undefined; formation: Record<string, number> }> {
    const [rel, form] = await Promise.all([
      this.#d.pool.query(`SELECT app, version, image, digest, procfile, port, config, limits FROM rm_releases.releases WHERE app = $1 ORDER BY version DESC LIMIT 1`, [app]),
      this.#d.pool.query(`SELECT type, quantity FROM rm_formation.formation WHERE app = $1`, [app]),
    ])
    const r = rel.rows[0] as (ReleaseView & { image: string | null; digest: string | null; port: number | null }) | undefined
    const formation = Object.fromEntries((form.rows as { type: string; quantity: number }[]).map((f) => [f.type, f.quantity]))
    if (!r?.image) return { release: undefined, formation }
    return { release: { ...r, image: r.image, digest: r.digest ?? undefined, port: r.port ?? undefined }, formation }
  }

  /** Every app that has a release with an image or a service of this namespace. */
  async apps(): Promise<string[]> {
    const { rows } = await this.#d.pool.query(`SELECT DISTINCT app FROM rm_releases.releases WHERE image IS NOT NULL`)
    const running = await listServices(this.#d.docker, this.#d.namespace)
    return [...new Set([...(rows as { app: string }[]).map((r) => r.app), ...running.map((s) => s.app)])].sort()
  }

  /**
   * Makes the app's services what its read models say. With a change (and a release to run): appends
   * `DeployStarted` and watches the deploy (in the background) until `DeployCompleted` or `DeployFailed`.
   * `resume`: with no change, picks up a deploy whose outcome was never announced (the scheduler stopped).
   */
  reconcile(app: string, opts: { cause?: RecordedEvent; resume?: boolean } = {}): Promise<'changed' | 'unchanged'> {
    return this.#serial(app, async () => {
      const { release, formation } = await this.readApp(app)
      const desired = desiredServices(this.#d.namespace, release, formation, this.#o.spec)
      const actual = await listServices(this.#d.docker, this.#d.namespace, app)
      const changes = diff(desired, actual)
      if (changes.length === 0) {
        if (opts.resume && release) await this.#resume(app, release, desired)
        return 'unchanged'
      }
      const log = this.#d.log.child({ app, release: release?.version })
      if (!release) {
        // Nothing should run (the app is gone, or has no build): no deploy to announce.
        for (const c of changes) await applyChange(this.#d.docker, c)
        log.info({ removed: changes.length }, 'scheduler: removed services of an app with nothing to run')
        return 'changed'
      }
      const ctx = { actor: ACTOR, correlationId: opts.cause?.correlationId ?? `scheduler:${app}`, causationId: opts.cause?.id ?? null }
      await this.#started(app, release.version, deployFormation(release, formation), ctx)
      try {
        for (const c of changes) await applyChange(this.#d.docker, c)
      } catch (err) {
        const reason = `Swarm refused the change: ${(err as Error).message}`.slice(0, 2048)
        log.error({ err }, 'scheduler: cannot apply a deploy')
        await this.#append(app, 'DeployFailed', { app, release: release.version, reason }, ctx)
        return 'changed'
      }
      log.info({ changes: changes.map((c) => `${c.kind} ${c.kind === 'remove' ? c.actual.name : c.desired.name}`) }, 'scheduler: deploy started')
      this.#watch(app, release.version, desired, ctx)
      return 'changed'
    })
  }

  /** `ps:restart [type]`: replaces the app's tasks (of one type, or all) one by one, once per request. */
  restart(app: string, type: string | undefined, cause: RecordedEvent): Promise<void> {
    return this.#serial(app, async () => {
      const { release, formation } = await this.readApp(app)
      if (!release) return
      const desired = desiredServices(this.#d.namespace, release, formation, this.#o.spec).filter((d) => type === undefined || d.type === type)
      let any = false
      for (const d of desired) {
        try {
          if (await restartService(this.#d.docker, d.name, cause.id)) any = true
        } catch (err) {
          this.#d.log.warn({ err, service: d.name }, 'scheduler: cannot restart a service')
        }
      }
      if (!any) return
      const ctx = { actor: ACTOR, correlationId: cause.correlationId, causationId: cause.id }
      await this.#started(app, release.version, deployFormation(release, formation), ctx)
      this.#watch(app, release.version, desired, ctx)
    })
  }

  /** `AppDestroyed`: removes the app's services and (best effort) its images. */
  destroy(app: string): Promise<void> {
    return this.#serial(app, async () => {
      this.#cancelWatch(app)
      for (const s of await listServices(this.#d.docker, this.#d.namespace, app)) await applyChange(this.#d.docker, { kind: 'remove', actual: s })
      const images = await removeAppImages(this.#d.docker, this.#d.registry, app).catch(() => 0)
      this.#d.log.info({ app, images }, 'scheduler: removed the services and images of a destroyed app')
    })
  }

  /** Stops watching deploys (their outcome is announced by the next scheduler, see `resume`). */
  async stop(): Promise<void> {
    this.#stopped = true
    const watches = [...this.#watches.values()]
    for (const w of watches) w.cancelled = true
    await Promise.all([...this.#queues.values(), ...watches.map((w) => w.done)].map((p) => p.catch(() => {})))
  }

  async #append(app: string, type: string, data: object, ctx: { actor: string; correlationId: string; causationId: string | null }): Promise<void> {
    await this.#d.store.append(streamId('runtime', app), [{ type, data }], { ...ctx, expectedVersion: 'any' })
  }

  /** The last deploy event of `runtime.<app>`, if any. */
  async #lastDeploy(app: string): Promise<RecordedEvent | undefined> {
    const { events } = await this.#d.store.readStream(streamId('runtime', app))
    return [...events].reverse().find((e) => e.type.startsWith('Deploy'))
  }

  /** Appends `DeployStarted`, unless the last deploy event is the same start with no outcome (a retried reconcile). */
  async #started(app: string, release: number, formation: Record<string, number>, ctx: { actor: string; correlationId: string; causationId: string | null }): Promise<void> {
    const last = await this.#lastDeploy(app)
    const d = dataOf(last, 'DeployStarted')
    if (d?.release === release && JSON.stringify(d.formation) === JSON.stringify(formation)) return
    await this.#append(app, 'DeployStarted', { app, release, formation }, ctx)
  }

  /** After a restart of the scheduler: a started deploy with no outcome is watched again. */
  async #resume(app: string, release: ReleaseView, desired: DesiredService[]): Promise<void> {
    const last = await this.#lastDeploy(app)
    if (!last || !isEvent(last, 'DeployStarted')) return
    const started = last.data
    this.#d.log.info({ app, release: started.release }, 'scheduler: watching a deploy the previous scheduler started')
    this.#watch(app, release.version, desired, { actor: ACTOR, correlationId: last.correlationId, causationId: last.id }, Date.parse(last.occurredAt))
  }

  #cancelWatch(app: string): void {
    const w = this.#watches.get(app)
    if (w) w.cancelled = true
    this.#watches.delete(app)
  }

  /** Watches the app's services until they all run their spec (`DeployCompleted`), or one fails or time runs out (`DeployFailed`). */
  #watch(app: string, release: number, services: DesiredService[], ctx: { actor: string; correlationId: string; causationId: string | null }, since = Date.now()): void {
    this.#cancelWatch(app)
    const watch: Watch = { cancelled: false, done: Promise.resolve() }
    this.#watches.set(app, watch)
    const log = this.#d.log.child({ app, release })
    const deadline = since + this.#o.deployTimeoutMs
    watch.done = (async () => {
      for (;;) {
        if (watch.cancelled || this.#stopped) return
        const progress = await Promise.all(services.map((s) => serviceProgress(this.#d.docker, s.name, s.hash, { ...this.#o.progress, since })))
        if (watch.cancelled || this.#stopped) return
        const failedAt = progress.findIndex((p) => p.state === 'failed')
        if (failedAt >= 0) {
          const p = progress[failedAt] as Extract<(typeof progress)[number], { state: 'failed' }>
          const s = services[failedAt]!
          await markFailed(this.#d.docker, s.name, s.hash).catch((err) => log.warn({ err }, 'scheduler: cannot mark a failed spec'))
          log.warn({ service: s.name, reason: p.reason }, 'scheduler: deploy failed')
          const rolledBackTo = p.rolledBack && p.rolledBackTo !== undefined && p.rolledBackTo !== release ? { rolledBackTo: p.rolledBackTo } : {}
          await this.#append(app, 'DeployFailed', { app, release, reason: `${s.type}: ${p.reason}`.slice(0, 2048), ...rolledBackTo }, ctx)
          return
        }
        if (progress.every((p) => p.state === 'converged' || p.state === 'gone')) {
          await this.#append(app, 'DeployCompleted', { app, release }, ctx)
          log.info({ ms: Date.now() - since }, 'scheduler: deploy completed')
          return
        }
        if (Date.now() > deadline) {
          const behind = progress.map((p, i) => (p.state === 'converging' ? `${services[i]!.type} ${p.running}/${p.wanted} running` : undefined)).filter(Boolean)
          await this.#append(app, 'DeployFailed', { app, release, reason: `not running after ${this.#o.deployTimeoutMs / 1000} s: ${behind.join(', ')}` }, ctx)
          return
        }
        await sleep(this.#o.pollMs)
      }
    })()
      .catch((err) => log.error({ err }, 'scheduler: lost track of a deploy'))
      .finally(() => this.#watches.get(app) === watch && this.#watches.delete(app))
  }

  /** Resolves when no deploy is being watched (tests). */
  async idle(): Promise<void> {
    while (this.#watches.size > 0) await Promise.all([...this.#watches.values()].map((w) => w.done))
  }
}
