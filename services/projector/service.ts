import { Projector, wharfProjections } from '../../projections/index.js'
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
    return { stop: () => p.stop() }
  },
}
