import { DockerEngine } from '../../core/engine/docker.js'
import { logLimits } from '../../logs/index.js'
import type { ServiceDefinition } from '../runtime.js'
import { Logspout } from './logspout.js'

/**
 * Logspout: one per Docker host. Follows the logs of this host's containers of the platform's
 * namespace and publishes their lines on the log stream.
 */
export const logspout: ServiceDefinition = {
  name: 'logspout',
  description: 'container stdout/stderr -> the log stream (one per Docker host)',
  async start({ cfg, log: root, logs }) {
    const log = root.child({ service: 'logspout' })
    if (!cfg.dockerHost) throw new Error('WHARF_DOCKER_HOST is not set (make up sets it)')
    await logs.ensure(logLimits(cfg))
    const spout = await Logspout.start({
      docker: DockerEngine.at(cfg.dockerHost),
      swarm: DockerEngine.at(cfg.swarmManager ?? cfg.dockerHost),
      logs,
      log,
      namespace: cfg.namespace,
      appRate: cfg.logs.appRate,
      lookbackMs: cfg.logs.streamHours * 3_600_000,
    })
    log.info({ namespace: cfg.namespace, connected: spout.health().ok }, 'logspout: following the containers')
    return { stop: () => spout.stop(), health: async () => spout.health() }
  },
}
