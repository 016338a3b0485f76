import { join } from 'node:path'
import { dockerClient } from '../../core/engine/docker.js'
import { readTopology, restartDeadEngines } from '../hosts.js'
import type { InfraContext, Part } from '../part.js'
import { isAlive, waitUntil } from '../proc.js'

/** Where `hosts:up` (and a drill with an engine of its own) keeps the simulated hosts: `$WHARF_HOME/hosts`. */
export const hostsDir = (ctx: InfraContext): string => join(ctx.cfg.home, 'hosts')

/**
 * The Docker engines of the simulated hosts (infra/hosts.ts), as one part for the supervisor: a dead
 * engine is started again in its namespace with its data. Not among the parts supervised by
 * default (see `restartDeadEngines`); `infra supervise --parts ...,hosts` asks for it.
 */
export const simulatedHosts: Part = {
  name: 'hosts',
  processes: (ctx) => readTopology(hostsDir(ctx))?.hosts.map((h) => (isAlive(h.pid) ? h.pid : undefined)) ?? [],
  async status(ctx) {
    const t = readTopology(hostsDir(ctx))
    if (!t?.hosts.length) return { up: false, address: hostsDir(ctx), detail: 'no simulated hosts' }
    const answers = await Promise.all(
      t.hosts.map((h) =>
        dockerClient(h.dockerHost)
          .ping()
          .then(
            () => isAlive(h.pid),
            () => false,
          ),
      ),
    )
    const down = t.hosts.filter((_, i) => !answers[i]).map((h) => h.name)
    return {
      up: down.length === 0,
      address: t.hosts.map((h) => h.dockerHost).join(', '),
      detail: down.length ? `engines down: ${down.join(', ')}` : `${t.hosts.length} engines`,
    }
  },
  async start(ctx) {
    const t = readTopology(hostsDir(ctx))
    if (!t) return 'running'
    const started = await restartDeadEngines(t)
    for (const h of t.hosts) await waitUntil(`Docker engine of ${h.name}`, async () => !!(await dockerClient(h.dockerHost).ping()), 60_000)
    if (started.length) ctx.say(`hosts: started the engines of ${started.join(', ')} again`)
    return started.length ? 'started' : 'running'
  },
  // `infra hosts:down` takes them down (namespaces, links and all).
  stop: async () => 'not running',
}
