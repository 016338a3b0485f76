import { mkdirSync, writeFileSync } from 'node:fs'
import type { WharfConfig } from '../core/config.js'
import type { InfraContext, Part, PartStatus } from './part.js'
import { ensureBuckets } from '../core/objectstore/s3.js'
import { ceph } from './parts/ceph.js'
import { docker } from './parts/docker.js'
import { nats } from './parts/nats.js'
import { nginx } from './parts/nginx.js'
import { postgres } from './parts/postgres.js'
import { redis } from './parts/redis.js'
import { registry } from './parts/registry.js'
import { builder, router, services, servicesEnv, servicesOutdated, supervisor, workers } from './parts/services.js'
import { pathsFor } from '../core/paths.js'
import { processId, stillRuns } from './proc.js'
import { startLockPath, withStartLock } from './start-lock.js'

/**
 * Every real part Wharf may run; the Wharf services need them all. Most start side by side; a part
 * with `after` waits for those (the registry for the store). redis runs only for
 * `WHARF_REGISTRY_CACHE=redis` but is always stopped (the setting may have changed since).
 */
export const REAL_PARTS: readonly Part[] = [nats, postgres, registry, docker, nginx, ceph, redis]
export const ALL_PARTS: readonly Part[] = [...REAL_PARTS, services, router, workers, builder, supervisor]

/** What the supervisor watches: every real part this configuration runs, the services, the router, the workers and the builder. */
export function supervisedParts(cfg: WharfConfig): Part[] {
  return [...realParts(cfg), services, router, workers, builder]
}

/** The real parts this configuration runs. */
export function realParts(cfg: WharfConfig): Part[] {
  return REAL_PARTS.filter((p) => p !== redis || cfg.registryCache === 'redis')
}

export function contextFor(cfg: WharfConfig, say: (line: string) => void = () => {}): InfraContext {
  return { cfg, paths: pathsFor(cfg.home), say }
}

/**
 * Starts part `p` holding its start lock (infra/start-lock.ts), so that `make up` and the supervisor
 * never both start it: the one that comes second waits, and then finds it running. `by` names the
 * starter in the lock (`make up`, `supervisor`).
 */
export function startPart(ctx: InfraContext, p: Part, by: string): Promise<'started' | 'running'> {
  mkdirSync(ctx.paths.run, { recursive: true })
  return withStartLock(
    startLockPath(ctx.paths.run, p.name),
    {
      by,
      self: processId()!,
      runs: stillRuns,
      onWait: (h) => ctx.say(`${p.name.padEnd(9)} being started by the ${h.by} (pid ${h.pid}); waiting for it`),
    },
    () => p.start(ctx),
  )
}

export interface UpResult {
  changed: boolean
  results: { part: string; result: 'started' | 'running' }[]
}

/**
 * Starts every part that is not running (the real parts side by side, then the services), waiting
 * until each answers. A second call with everything up changes nothing.
 */
export async function up(
  ctx: InfraContext,
  parts: { real: readonly Part[]; services: boolean } = { real: realParts(ctx.cfg), services: true },
): Promise<UpResult> {
  for (const d of [ctx.paths.home, ctx.paths.run, ctx.paths.logs]) mkdirSync(d, { recursive: true })
  // An operator's S3 that is unreachable or refuses the keys stops everything before anything starts.
  if (ctx.cfg.s3.external && parts.real.includes(ceph)) await ensureBuckets(ctx.cfg.s3)
  const started = new Map<string, Promise<unknown>>()
  for (const p of parts.real) {
    started.set(
      p.name,
      (async () => {
        // Let every part's promise be registered first: a part may depend on one later in the list.
        await Promise.resolve()
        for (const dep of p.after?.(ctx) ?? []) {
          const before = started.get(dep)
          if (before) await before.catch(() => Promise.reject(new Error(`${p.name}: not started, it needs ${dep}, which did not start`)))
        }
        const t0 = Date.now()
        const result = await startPart(ctx, p, 'make up')
        ctx.say(`${p.name.padEnd(9)} ${result === 'started' ? `started (${((Date.now() - t0) / 1000).toFixed(1)} s)` : 'already running'}`)
        return { part: p.name, result }
      })(),
    )
  }
  const settled = await Promise.allSettled(started.values())
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed.length) throw new Error(failed.map((f) => (f.reason as Error).message).join('\n'))
  const results = settled.map((s) => (s as PromiseFulfilledResult<UpResult['results'][number]>).value)
  if (parts.services) {
    // A rebuilt checkout gets the new code: services started from an older build are restarted.
    const outdated = servicesOutdated(ctx)
    if (outdated) {
      // Not started again with the old build meanwhile: the supervisor goes first (it is started again below).
      await supervisor.stop(ctx)
      await builder.stop(ctx)
      await workers.stop(ctx)
      await router.stop(ctx)
    }
    const restarted = outdated && (await services.stop(ctx)) === 'stopped'
    // The router and the workers after the services process: the projector in it makes the tables they read.
    for (const p of [services, router, workers, builder, supervisor]) {
      const t0 = Date.now()
      const result = await startPart(ctx, p, 'make up')
      const took = `(${((Date.now() - t0) / 1000).toFixed(1)} s)`
      ctx.say(
        `${p.name.padEnd(9)} ${result === 'running' ? 'already running' : restarted && p !== supervisor ? `restarted with the new build ${took}` : `started ${took}`}`,
      )
      results.push({ part: p.name, result })
    }
  }
  writeEnvFile(ctx)
  return { changed: results.some((r) => r.result === 'started'), results }
}

/** Stops the services first, then the real parts, each by its recorded pid. Data stays. */
export async function down(ctx: InfraContext, parts: readonly Part[] = ALL_PARTS): Promise<{ part: string; result: string }[]> {
  const out: { part: string; result: string }[] = []
  // The supervisor first, or it starts again what is being stopped (`make up` starts it again).
  const sup = await supervisor.stop(ctx)
  if (sup === 'stopped' || parts.includes(supervisor)) out.push({ part: supervisor.name, result: sup })
  for (const p of [services, router, workers, builder]) if (parts.includes(p)) out.push({ part: p.name, result: await p.stop(ctx) })
  const real = parts.filter((p) => p !== services && p !== router && p !== workers && p !== builder && p !== supervisor)
  const results = await Promise.all(real.map(async (p) => ({ part: p.name, result: await p.stop(ctx) })))
  return [...out, ...results]
}

/** Each part this configuration runs (and redis when it still runs from an earlier setting). */
export async function status(ctx: InfraContext): Promise<{ part: string; status: PartStatus }[]> {
  const rows = await Promise.all(ALL_PARTS.map(async (p) => ({ part: p.name, status: await p.status(ctx) })))
  return rows.filter((r) => r.part !== redis.name || ctx.cfg.registryCache === 'redis' || r.status.pid)
}

/**
 * Writes $WHARF_HOME/wharf.env (mode 600): the settings of the running platform, for tools that
 * connect to it (`npm run bench:*`, admin commands). Shell syntax, so `set -a; . .wharf/wharf.env` works.
 */
export function writeEnvFile(ctx: InfraContext): void {
  const env = servicesEnv(ctx)
  const body = Object.entries(env)
    .map(([k, v]) => `${k}='${String(v).replaceAll("'", "'\\''")}'`)
    .join('\n')
  writeFileSync(ctx.paths.envFile, `# Written by \`make up\`: the settings of the running platform.\n${body}\n`, { mode: 0o600 })
}
