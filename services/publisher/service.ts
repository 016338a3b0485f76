import { DockerEngine } from '../../core/engine/docker.js'
import type { ServiceDefinition } from '../runtime.js'
import { Publisher } from './publisher.js'

/**
 * The publisher: one per Docker host. Announces the containers of this host's engine (those labelled
 * with this platform's namespace) on their apps' runtime streams, reachable at `cfg.hostAddress` (`WHARF_HOST_ADDRESS`).
 */
export const publisher: ServiceDefinition = {
  name: 'publisher',
  description: 'Docker events -> ContainerStarted / Stopping / Stopped / Crashed (one per Docker host)',
  async start({ cfg, log: root, store, pool }) {
    const log = root.child({ service: 'publisher' })
    if (!cfg.dockerHost) throw new Error('WHARF_DOCKER_HOST is not set (make up sets it)')
    const p = await Publisher.start({
      docker: DockerEngine.at(cfg.dockerHost),
      swarm: DockerEngine.at(cfg.swarmManager ?? cfg.dockerHost),
      store,
      pool,
      log,
      namespace: cfg.namespace,
      host: cfg.hostAddress,
    })
    log.info({ namespace: cfg.namespace, host: cfg.hostAddress, connected: p.health().ok }, 'publisher: following the engine events')
    return {
      stop: () => p.stop(),
      health: async () => p.health(),
    }
  },
}
