import { request } from 'undici'
import type { InfraContext, Part } from './part.js'
import { livePid, portOpen, startDaemon, stopPidfile, tail, waitUntil, type DaemonSpec } from './proc.js'

/**
 * A part that is one long-running process Wharf starts itself, with a recorded pid and a health
 * check: NATS, the registry, nginx, the Wharf services. (Postgres and the Docker engine have their
 * own start-up steps and are written out in full.)
 */
export interface DaemonPartSpec {
  name: string
  /** See {@link Part.after}. */
  after?(ctx: InfraContext): readonly string[]
  /** Where it answers, for the summary. */
  address(ctx: InfraContext): string
  pidfile(ctx: InfraContext): string
  /** The log whose tail explains a failed start. */
  log(ctx: InfraContext): string
  /** Ports that must be free before the start, each with the variable that moves it. */
  ports(ctx: InfraContext): { port: number; env: string }[]
  healthy(ctx: InfraContext): Promise<boolean>
  /** Version and a detail line for `make status`. */
  describe?(ctx: InfraContext): Promise<{ version?: string; detail?: string }>
  /** Makes directories and writes configuration; returns what to run. */
  prepare(ctx: InfraContext): Promise<DaemonSpec> | DaemonSpec
  /**
   * For a part already running: brings its configuration up to date with this checkout (e.g. a
   * config file written anew and reloaded); answers whether anything changed.
   */
  refresh?(ctx: InfraContext): Promise<boolean>
  /** Signal for a graceful stop, default SIGTERM. */
  stopSignal?: NodeJS.Signals
  /** How long the start may take until healthy, ms, default 30_000. */
  startTimeoutMs?: number
  /** How long a stop may take before SIGKILL, ms, default 20_000. */
  stopTimeoutMs?: number
  /** See {@link Part.orphanedWorkers}. */
  orphanedWorkers?: boolean
}

export function daemonPart(spec: DaemonPartSpec): Part {
  return {
    name: spec.name,
    ...(spec.after ? { after: spec.after } : {}),
    ...(spec.orphanedWorkers ? { orphanedWorkers: true } : {}),
    processes: (ctx) => [livePid(spec.pidfile(ctx))],
    async status(ctx) {
      const address = spec.address(ctx)
      const pid = livePid(spec.pidfile(ctx))
      if (!pid) return { up: false, address }
      try {
        const up = await spec.healthy(ctx)
        return { up, address, pid, ...(await spec.describe?.(ctx)) }
      } catch (err) {
        return { up: false, address, pid, detail: (err as Error).message }
      }
    },
    async start(ctx) {
      const timeout = spec.startTimeoutMs ?? 30_000
      if (livePid(spec.pidfile(ctx))) {
        await waitUntil(spec.name, () => spec.healthy(ctx), timeout)
        if (await spec.refresh?.(ctx)) ctx.say(`${spec.name}: its configuration changed with this checkout; reloaded`)
        return 'running'
      }
      for (const { port, env } of spec.ports(ctx)) {
        if (await portOpen(port)) throw new Error(`${spec.name}: port ${port} is already taken by another process (set ${env})`)
      }
      startDaemon(await spec.prepare(ctx))
      await waitUntil(spec.name, () => spec.healthy(ctx), timeout).catch((err) => {
        throw new Error(`${(err as Error).message}\n${tail(spec.log(ctx))}`)
      })
      return 'started'
    },
    async stop(ctx) {
      const stopped = await stopPidfile(spec.pidfile(ctx), { signal: spec.stopSignal ?? 'SIGTERM', timeoutMs: spec.stopTimeoutMs ?? 20_000 })
      return stopped ? 'stopped' : 'not running'
    },
  }
}

/** True when `GET url` answers `status` within a second. */
export async function answers(url: string, status = 200, headers: Record<string, string> = {}): Promise<boolean> {
  const res = await request(url, { headersTimeout: 1000, bodyTimeout: 1000, headers })
  await res.body.dump()
  return res.statusCode === status
}
