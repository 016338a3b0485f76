/**
 * The scheduler's reconcile loop: for an app, desired services (read models) against actual
 * (Swarm), apply the difference, announce the deploy on `runtime.<app>` and watch it converge.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { isEngineUnreachable, type ContainerEngine } from '../../core/engine/engine.js'
import type { Logger } from '../../core/log.js'
import { readState, runCommand } from '../../domain/command.js'
import { runtimeDecider, type RuntimeCommand } from '../../domain/runtime/decider.js'
import { streamId, type EventStore, type RecordedEvent } from '../../events/index.js'
import { appsWithImage, deployableRelease, getFormation } from '../../projections/index.js'
import { deployFormation, desiredServices, diff, type DesiredService, type ReleaseView, type SpecOptions } from './model.js'
import { applyChange, listServices, markFailed, nudgeUpdate, removeAppImages, restartService, serviceProgress, type ProgressOptions } from './swarm.js'

/** How many times one deploy's update is started over after a host was lost under it. */
const MAX_NUDGES = 3

export interface SchedulerOptions {
  /** How long a deploy may take before `DeployFailed`, ms, default 60_000. */
  deployTimeoutMs?: number
  /** How often a deploy's progress is read, ms, default 250. */
  pollMs?: number
  /** With tasks on a down node, how long no new task may come up before Swarm's update is started over, ms, default 5_000. */
  nudgeAfterMs?: number
  /**
   * A change asked for while the app's last deploy is still starting its tasks waits until they all
   * run (one Swarm update of a service at a time; changes asked for meanwhile make one deploy of the
   * newest release), but at most this long, ms, default 5_000 (a deploy that hangs does not hold up the
   * next release, a fix, for longer).
   */
  supersedeAfterMs?: number
  /**
   * Least time between the starts of two deploys of one app that {@link Scheduler.request} asks for,
   * ms, default 2_000: under a stream of config changes (a script, a burst of `config:set`) each deploy
   * replaces every task of the app, so the newest release goes out at most this often, not once per
   * deploy cycle. A change after a quiet spell deploys at once.
   */
  deployIntervalMs?: number
  /** Tunables of the services' specs (grace period, monitors, health check timing). */
  spec?: Partial<SpecOptions>
  progress?: ProgressOptions
}

/** What the scheduler reads of the read models: the projections' queries over `pool` by default ({@link sqlReads}). */
export interface SchedulerReads {
  /** The app's current release (when it has an image) and formation. */
  readApp(app: string): Promise<{ release: ReleaseView | undefined; formation: Record<string, number> }>
  /** Every app that has a release with an image. */
  appsWithImage(): Promise<string[]>
}

export interface SchedulerDeps {
  store: EventStore
  /** The read models' database (for {@link sqlReads}); not needed when `reads` is given. */
  pool?: pg.Pool
  /** The read-model queries, default {@link sqlReads} of `pool`. */
  reads?: SchedulerReads
  /** The container engine (a Swarm manager). */
  docker: ContainerEngine
  namespace: string
  /** `127.0.0.1:<port>` of the registry the apps' images come from (to remove them with the app). */
  registry: string
  log: Logger
}

const ACTOR = 'system:scheduler'

/** {@link SchedulerReads} as SQL over the releases and formation read models. */
export function sqlReads(pool: pg.Pool): SchedulerReads {
  return {
    async readApp(app) {
      const [r, formation] = await Promise.all([deployableRelease(pool, app), getFormation(pool, app)])
      if (!r?.image) return { release: undefined, formation }
      return { release: { ...r, image: r.image, digest: r.digest ?? undefined, port: r.port ?? undefined }, formation }
    },
    appsWithImage: () => appsWithImage(pool),
  }
}

/** One app's deploy being watched; a newer deploy of the app supersedes it. */
interface Watch {
  cancelled: boolean
  done: Promise<void>
  /** Every task the deploy wants runs (or the watch ended): Swarm's update is through. */
  up: boolean
  /** Called once when `up` becomes true. */
  onUp?: () => void
}

/** A reconcile waiting for the app's deploy in progress (see {@link Scheduler.request}). */
interface Pending {
  cause: RecordedEvent | undefined
  /** Events it stands for. */
  coalesced: number
  timer: NodeJS.Timeout
}

/** The reconcile loop of one namespace. Calls for one app run one at a time (a queue per app). */
export class Scheduler {
  readonly #d: SchedulerDeps
  readonly #reads: SchedulerReads
  readonly #o: Required<Omit<SchedulerOptions, 'spec' | 'progress'>> & Pick<SchedulerOptions, 'spec' | 'progress'>
  readonly #queues = new Map<string, Promise<unknown>>()
  readonly #watches = new Map<string, Watch>()
  readonly #pending = new Map<string, Pending>()
  /** When each app's last deploy started (Date.now()). */
  readonly #deployedAt = new Map<string, number>()
  #stopped = false

  constructor(deps: SchedulerDeps, opts: SchedulerOptions = {}) {
    this.#d = deps
    if (!deps.reads && !deps.pool) throw new Error('the scheduler needs the read models: give pool or reads')
    this.#reads = deps.reads ?? sqlReads(deps.pool!)
    this.#o = {
      deployTimeoutMs: opts.deployTimeoutMs ?? 60_000,
      pollMs: opts.pollMs ?? 250,
      nudgeAfterMs: opts.nudgeAfterMs ?? 5_000,
      supersedeAfterMs: opts.supersedeAfterMs ?? 5_000,
      deployIntervalMs: opts.deployIntervalMs ?? 2_000,
      spec: opts.spec,
      progress: opts.progress,
    }
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
    return this.#reads.readApp(app)
  }

  /** Every app that has a release with an image or a service of this namespace. */
  async apps(): Promise<string[]> {
    const withImage = await this.#reads.appsWithImage()
    const running = await listServices(this.#d.docker, this.#d.namespace)
    return [...new Set([...withImage, ...running.map((s) => s.app)])].sort()
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
      this.#deployedAt.set(app, Date.now())
      await this.#started(app, release.version, deployFormation(release, formation), ctx)
      try {
        for (const c of changes) await applyChange(this.#d.docker, c)
      } catch (err) {
        // The engine is away (killed, restarting): not a refusal. Thrown, so the event comes again
        // (the consumer retries it) and the change is applied once the engine is back; the deploy
        // started stays open until then. Answering `FailDeploy` here left the change unapplied for good.
        if (isEngineUnreachable(err)) {
          log.warn({ err }, 'scheduler: the engine cannot be reached; the deploy is applied when it is back')
          throw err
        }
        const reason = `Swarm refused the change: ${(err as Error).message}`.slice(0, 2048)
        log.error({ err }, 'scheduler: cannot apply a deploy')
        await this.#run({ type: 'FailDeploy', app, release: release.version, reason }, ctx)
        return 'changed'
      }
      log.info({ changes: changes.map((c) => `${c.kind} ${c.kind === 'remove' ? c.actual.name : c.desired.name}`) }, 'scheduler: deploy started')
      this.#watch(app, release.version, desired, ctx)
      return 'changed'
    })
  }

  /**
   * {@link reconcile}, unless a deploy of the app is still starting its tasks: then the reconcile runs
   * once they all run, or after `supersedeAfterMs`, and requests made meanwhile join it ('deferred');
   * a release (`cause` a `ReleaseCreated`) also waits until `deployIntervalMs` have passed since the
   * app's last deploy started. It reads the read models when it runs, so it deploys the newest
   * release: a burst of config changes makes one Swarm update per interval, never two updates of a
   * service at once, and none is lost (the newest wins; every release stays in the log and the read models).
   */
  request(app: string, cause?: RecordedEvent): Promise<'changed' | 'unchanged' | 'deferred'> {
    const pending = this.#pending.get(app)
    if (pending) {
      pending.cause = cause ?? pending.cause
      pending.coalesced++
      return Promise.resolve('deferred')
    }
    const watch = this.#watches.get(app)
    const starting = watch !== undefined && !watch.up
    // A scale changes the number of tasks only (the running ones stay): not held back by the interval.
    const spaced = cause?.type === 'ReleaseCreated'
    if ((!starting && (!spaced || this.#spacing(app) <= 0)) || this.#stopped) return this.reconcile(app, cause ? { cause } : {})
    const fire = (): void => {
      if (this.#pending.get(app) !== entry) return
      clearTimeout(entry.timer)
      // The deploy's tasks run (or it took too long): the rest of the interval since it started, if any.
      const rest = spaced ? this.#spacing(app) : 0
      if (rest > 0 && !this.#stopped) {
        entry.timer = setTimeout(fire, rest)
        return
      }
      this.#pending.delete(app)
      if (this.#stopped) return
      if (entry.coalesced > 1) this.#d.log.info({ app, coalesced: entry.coalesced }, 'scheduler: changes asked for during a deploy make one deploy')
      this.#reconcileLater(app, entry.cause, 0)
    }
    const entry: Pending = { cause, coalesced: 1, timer: setTimeout(fire, starting ? this.#o.supersedeAfterMs : this.#spacing(app)) }
    this.#pending.set(app, entry)
    if (starting) watch.onUp = fire
    return Promise.resolve('deferred')
  }

  /** How long until the app's next deploy may start (see `deployIntervalMs`), ms; <= 0: now. */
  #spacing(app: string): number {
    const at = this.#deployedAt.get(app)
    return at === undefined ? 0 : at + this.#o.deployIntervalMs - Date.now()
  }

  /**
   * A deferred reconcile, run outside the consumer: one that fails (the engine away) is tried again
   * every second, as the consumer would hand its event again, until it works or the scheduler stops.
   */
  #reconcileLater(app: string, cause: RecordedEvent | undefined, delayMs: number): void {
    const run = (): void => {
      if (this.#stopped) return
      this.request(app, cause).catch((err) => {
        this.#d.log.warn({ err, app }, 'scheduler: cannot reconcile an app after its deploy; trying again')
        this.#reconcileLater(app, cause, 1_000)
      })
    }
    if (delayMs === 0) run()
    else setTimeout(run, delayMs).unref()
  }

  /** `ps:restart [type]`: replaces the app's tasks (of one type, or all), all at once start-first, once per request. */
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
    const pending = this.#pending.get(app)
    if (pending) clearTimeout(pending.timer)
    this.#pending.delete(app)
    this.#deployedAt.delete(app)
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
    for (const p of this.#pending.values()) clearTimeout(p.timer)
    this.#pending.clear()
    const watches = [...this.#watches.values()]
    for (const w of watches) w.cancelled = true
    await Promise.all([...this.#queues.values(), ...watches.map((w) => w.done)].map((p) => p.catch(() => {})))
  }

  /** Decides a deploy event on `runtime.<app>` (the runtime decider tells each one once); waits for no read model. */
  async #run(command: Exclude<RuntimeCommand, { type: 'Announce' }>, ctx: { actor: string; correlationId: string; causationId: string | null }): Promise<void> {
    await runCommand(this.#d, { stream: streamId('runtime', command.app), decider: runtimeDecider, command, ctx, waitFor: [] })
  }

  /** Appends `DeployStarted`, unless the same start has no outcome yet (a retried reconcile). */
  async #started(
    app: string,
    release: number,
    formation: Record<string, number>,
    ctx: { actor: string; correlationId: string; causationId: string | null },
  ): Promise<void> {
    await this.#run({ type: 'StartDeploy', app, release, formation }, ctx)
  }

  /** After a restart of the scheduler: a started deploy with no outcome is watched again. */
  async #resume(app: string, release: ReleaseView, desired: DesiredService[]): Promise<void> {
    const { deploy } = (await readState(this.#d.store, runtimeDecider, streamId('runtime', app))).state
    if (deploy?.status !== 'started') return
    this.#d.log.info({ app, release: deploy.release }, 'scheduler: watching a deploy the previous scheduler started')
    this.#watch(
      app,
      release.version,
      desired,
      { actor: ACTOR, correlationId: deploy.event.correlationId, causationId: deploy.event.id },
      Date.parse(deploy.event.occurredAt),
    )
  }

  #cancelWatch(app: string): void {
    const w = this.#watches.get(app)
    if (w) w.cancelled = true
    this.#watches.delete(app)
  }

  /** Watches the app's services until they all run their spec (`DeployCompleted`), or one fails or time runs out (`DeployFailed`). */
  #watch(
    app: string,
    release: number,
    services: DesiredService[],
    ctx: { actor: string; correlationId: string; causationId: string | null },
    since = Date.now(),
  ): void {
    this.#cancelWatch(app)
    const watch: Watch = { cancelled: false, done: Promise.resolve(), up: false }
    const up = (): void => {
      if (watch.up) return
      watch.up = true
      watch.onUp?.()
    }
    this.#watches.set(app, watch)
    const log = this.#d.log.child({ app, release })
    const deadline = since + this.#o.deployTimeoutMs
    /** Per service: its running count and since when it has not moved, and how often its update was nudged. */
    const moved = services.map(() => ({ running: -1, at: Date.now(), nudges: 0 }))
    let unreachableSaid = false
    /** One look at the services: answers true once the deploy has its outcome (or the watch ended). */
    const step = async (): Promise<boolean> => {
      let progress
      try {
        progress = await Promise.all(services.map((s) => serviceProgress(this.#d.docker, s.name, s.hash, { ...this.#o.progress, since })))
      } catch (err) {
        // The engine is away: Swarm goes on with the update once it is back; watched until the deadline.
        if (!isEngineUnreachable(err)) throw err
        if (Date.now() > deadline) {
          const reason = `not running after ${this.#o.deployTimeoutMs / 1000} s: the engine did not answer (${(err as Error).message})`
          await this.#run({ type: 'FailDeploy', app, release, reason: reason.slice(0, 2048) }, ctx)
          return true
        }
        if (!unreachableSaid) log.warn({ err }, 'scheduler: the engine cannot be reached; watching the deploy until it is back')
        unreachableSaid = true
        await sleep(Math.max(this.#o.pollMs, 500))
        return false
      }
      if (watch.cancelled || this.#stopped) return true
      const failedAt = progress.findIndex((p) => p.state === 'failed')
      if (failedAt >= 0) {
        const p = progress[failedAt] as Extract<(typeof progress)[number], { state: 'failed' }>
        const s = services[failedAt]!
        await markFailed(this.#d.docker, s.name, s.hash).catch((err) => log.warn({ err }, 'scheduler: cannot mark a failed spec'))
        log.warn({ service: s.name, reason: p.reason }, 'scheduler: deploy failed')
        const rolledBackTo = p.rolledBack && p.rolledBackTo !== undefined && p.rolledBackTo !== release ? { rolledBackTo: p.rolledBackTo } : {}
        await this.#run({ type: 'FailDeploy', app, release, reason: `${s.type}: ${p.reason}`.slice(0, 2048), ...rolledBackTo }, ctx)
        return true
      }
      if (progress.every((p) => p.state === 'converged' || p.state === 'gone' || (p.state === 'converging' && p.started >= p.wanted))) up()
      if (progress.every((p) => p.state === 'converged' || p.state === 'gone')) {
        await this.#run({ type: 'CompleteDeploy', app, release }, ctx)
        log.info({ ms: Date.now() - since }, 'scheduler: deploy completed')
        return true
      }
      // A host lost under a rolling update can stall Swarm's updater (tasks on a down node, no task
      // coming up for a while), or leave a slot running two tasks of the new spec (the slot's old and
      // new task on that host both started again elsewhere), which Swarm removes only at its next
      // update of the service. Either way, the update is started over (at most 3 times).
      for (const [i, p] of progress.entries()) {
        if (p.state !== 'converging') continue
        const m = moved[i]!
        if (p.running !== m.running) Object.assign(m, { running: p.running, at: Date.now() })
        else if ((p.lost || p.extra) && m.nudges < MAX_NUDGES && Date.now() - m.at >= this.#o.nudgeAfterMs) {
          m.nudges++
          m.at = Date.now()
          log.warn(
            { service: services[i]!.name, running: p.running, wanted: p.wanted, lost: p.lost, extra: p.extra },
            'scheduler: a host was lost under the update; starting it over',
          )
          await nudgeUpdate(this.#d.docker, services[i]!.name, m.nudges).catch((err) => log.warn({ err }, 'scheduler: cannot start the update over'))
        }
      }
      if (Date.now() > deadline) {
        const behind = progress.map((p, i) => (p.state === 'converging' ? `${services[i]!.type} ${p.running}/${p.wanted} running` : undefined)).filter(Boolean)
        await this.#run({ type: 'FailDeploy', app, release, reason: `not running after ${this.#o.deployTimeoutMs / 1000} s: ${behind.join(', ')}` }, ctx)
        return true
      }
      return false
    }
    watch.done = (async () => {
      for (;;) {
        if (watch.cancelled || this.#stopped) return
        try {
          if (await step()) return
        } catch (err) {
          // The engine or the event log did not answer (e.g. a NATS server lost, and the cluster not yet
          // done with it): the deploy is not lost with it; its outcome is decided at the next look.
          // Past the deadline and as long again, it is given up (its outcome waits for a scheduler restart, see `resume`).
          if (watch.cancelled || this.#stopped) return
          if (Date.now() > deadline + this.#o.deployTimeoutMs) throw err
          log.warn({ err }, 'scheduler: cannot follow a deploy for now; trying again')
        }
        await sleep(this.#o.pollMs)
      }
    })()
      .catch((err) => log.error({ err }, 'scheduler: lost track of a deploy'))
      .finally(() => {
        if (this.#watches.get(app) === watch) this.#watches.delete(app)
        up()
      })
  }

  /** Resolves when no deploy is being watched (tests). */
  async idle(): Promise<void> {
    while (this.#watches.size > 0) await Promise.all([...this.#watches.values()].map((w) => w.done))
  }
}
