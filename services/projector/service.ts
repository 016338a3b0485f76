import { projectionLagGauge } from '../../core/metrics.js'
import { Projector, readCheckpoints, wharfProjections } from '../../projections/index.js'
import type { ServiceDefinition } from '../runtime.js'

/**
 * The projector: migrates the read-model tables, then runs every projection as a durable
 * subscription with exactly-once checkpoints in Postgres.
 */
export const projector: ServiceDefinition = {
  name: 'projector',
  description: 'builds the Postgres read models from the event log (exactly once, rebuild by replay)',
  async start({ store, pool, log }) {
    const p = new Projector({ store, pool, projections: wharfProjections(), log })
    await p.start()
    const names = wharfProjections().map((x) => x.name)
    // Read when scraped: the log's last seq minus each read model's checkpoint.
    projectionLagGauge(async () => {
      const [last, rows] = await Promise.all([store.lastSeq(), readCheckpoints(pool, names)])
      return Object.fromEntries(rows.map((r) => [r.name, Math.max(0, last - Number(r.seq))]))
    })
    return { stop: () => p.stop() }
  },
}
