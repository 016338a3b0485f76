import { registryLogin } from '../../core/config.js'
import { mkdirSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerEngine } from '../../core/engine/docker.js'
import { buildDecider } from '../../domain/build/decider.js'
import { runCommand } from '../../domain/command.js'
import { streamId, type EventStore } from '../../events/index.js'
import { unfinishedBuilds } from '../../projections/index.js'
import type { ServiceDefinition } from '../runtime.js'
import type { BuildDeps } from './build.js'
import { HookServer } from './hook.js'
import { ensureHostKey } from './hostkey.js'
import { pushLockFree } from '../../core/pushlock.js'
import { startSshServer } from './ssh.js'
import pg from 'pg'
import type { Logger } from '../../core/log.js'

/** The hook socket: under $WHARF_HOME/run when the path fits a Unix socket, else in the temp dir. */
function hookSocketPath(home: string): string {
  const inHome = join(home, 'run', `builder-${process.pid}.sock`)
  if (inHome.length < 100) {
    mkdirSync(join(home, 'run'), { recursive: true })
    return inHome
  }
  return join(tmpdir(), `wharf-builder-${process.pid}.sock`)
}

/**
 * Builds whose builder died: unfinished in the builds read model while nobody holds their app's push
 * lock (every build runs under it). Each gets `BuildFailed`, once (the build decider's
 * `FailOrphanBuild`), so it stops showing as running and the next push works. Answers how many it marked.
 */
export async function failOrphanBuilds(deps: { store: EventStore; pool: pg.Pool; log: Logger; namespace: string; builderId: string }): Promise<number> {
  let marked = 0
  for (const r of await unfinishedBuilds(deps.pool)) {
    if (!(await pushLockFree(deps.pool, deps.namespace, r.app))) continue
    try {
      const { events } = await runCommand(deps, {
        stream: streamId('build', r.id),
        decider: buildDecider,
        command: { type: 'FailOrphanBuild', app: r.app },
        ctx: { actor: `system:builder`, correlationId: r.id },
        waitFor: [],
      })
      if (events.length === 0) continue
      marked++
      deps.log.warn({ build: r.id, app: r.app }, 'builder: marked an interrupted build as failed')
    } catch (err) {
      deps.log.info({ err, build: r.id }, 'builder: cannot mark an orphan build as failed; left to the next sweep')
    }
  }
  return marked
}

/**
 * The builder's own Postgres pool: one connection for each push it may run at once (the app's push
 * lock), and 4 more for what pushes look up (keys, apps, their events' read models).
 */
export function builderPool(databaseUrl: string, pushes: number): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max: pushes + 4, application_name: 'wharf-builder' })
}

/** How long a push waits for its release to be deployed, ms. */
const DEPLOY_WAIT_MS = 120_000
/** How long a push waits, once deployed, for the router to serve the new containers, ms. */
const SERVE_WAIT_MS = 30_000

/** How often the builder looks for builds whose builder died, ms. */
const SWEEP_MS = 30_000

/** The builder: SSH server for `git push`, builds through the Docker engine, images to the registry. */
export const builder: ServiceDefinition = {
  name: 'builder',
  description: `git push over SSH -> docker build -> registry -> release`,
  async start({ cfg, log: root, store, running }) {
    const log = root.child({ service: 'builder' })
    if (!cfg.dockerHost) throw new Error('WHARF_DOCKER_HOST is not set (make up sets it)')
    const key = ensureHostKey(cfg.home)
    const hooks = await HookServer.listen(hookSocketPath(cfg.home))
    const builderId = `${hostname()}:${process.pid}`
    // Pushes get a pool of their own, bounded by the pushes the builder runs at once: a push holds one
    // connection (its app's lock) for its whole length, so a flood of pushes never takes the
    // connections the API, the projector and token checks use.
    if (!cfg.databaseUrl) throw new Error('WHARF_DATABASE_URL is not set (make up sets it)')
    const pushPool = builderPool(cfg.databaseUrl, cfg.pushes.max)
    pushPool.on('error', (err) => log.error({ err }, 'builder: idle Postgres connection failed'))
    const deps: BuildDeps = {
      cfg,
      store,
      pool: pushPool,
      log,
      docker: DockerEngine.at(cfg.dockerHost, registryLogin(cfg)),
      builderId,
      // A push waits for its deploy when the scheduler runs beside the builder, or in another process
      // of the platform (`make up` runs the builder apart and says so).
      deployTimeoutMs: running.includes('scheduler') || cfg.pushes.waitsForDeploy ? DEPLOY_WAIT_MS : 0,
      serveTimeoutMs: running.includes('router') || cfg.pushes.waitsForDeploy ? SERVE_WAIT_MS : 0,
      ...(cfg.npmRegistry ? { npmRegistry: cfg.npmRegistry } : {}),
    }
    const sweep = () =>
      failOrphanBuilds({ store, pool: pushPool, log, namespace: cfg.namespace, builderId }).catch((err) => log.error({ err }, 'builder: orphan sweep failed'))
    await sweep()
    const timer = setInterval(() => void sweep(), SWEEP_MS)
    timer.unref()
    const ssh = await startSshServer({ ...deps, hooks, hostKey: key.privateKey })
    log.info({ port: ssh.port, hostKey: key.publicKey }, 'builder: SSH listening')
    return {
      async stop() {
        clearInterval(timer)
        await ssh.close()
        await hooks.close()
        await pushPool.end()
      },
    }
  },
}
