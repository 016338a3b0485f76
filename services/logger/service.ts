import { outboundPolicy } from '../../core/outbound.js'
import { logLimits } from '../../logs/index.js'
import type { ServiceDefinition } from '../runtime.js'
import { LogServer } from './logger.js'

/**
 * The logger: recent lines per app for `wharf logs`, platform events as lines, the syslog receiver
 * on 127.0.0.1:<syslog port>, drains, and hourly archives in the store's logs bucket (when the store's
 * keys are known).
 */
export const logger: ServiceDefinition = {
  name: 'logger',
  description: 'recent logs per app, syslog in, drains out, hourly archives to the store',
  async start({ cfg, log: root, store, pool, logs, objects }) {
    const log = root.child({ service: 'logger' })
    await logs.ensure(logLimits(cfg))
    if (!objects) log.warn('logger: no store keys (WHARF_S3_ACCESS_KEY): logs are not archived')
    const server = await LogServer.start({
      logs,
      store,
      pool,
      log,
      appLines: cfg.logs.appLines,
      appRate: cfg.logs.appRate,
      syslog: { host: cfg.host, port: cfg.ports.syslog },
      inputSecret: cfg.logs.inputSecret,
      ...(objects ? { objects: objects.logs } : {}),
      retentionMs: logLimits(cfg).maxAgeMs,
      drains: { policy: outboundPolicy(cfg) },
    })
    log.info({ syslog: `${cfg.host}:${server.syslog?.port}`, archives: Boolean(objects) }, 'logger: running')
    return {
      async stop() {
        await server.stop()
      },
      health: async () => server.health(),
    }
  },
}
