import { outboundPolicy } from '../../core/outbound.js'
import type { ServiceDefinition } from '../runtime.js'
import { Webhooks } from './webhooks.js'

/** The webhooks service: delivers events to subscribers in the Standard Webhooks format. */
export const webhooks: ServiceDefinition = {
  name: 'webhooks',
  description: 'delivers events to webhook subscribers (Standard Webhooks), one durable consumer per hook',
  async start({ cfg, store, pool, log }) {
    const w = new Webhooks({ store, pool, log: log.child({ service: 'webhooks' }), policy: outboundPolicy(cfg) })
    await w.start()
    return {
      stop: () => w.stop(),
      health: async () => ({ ok: true, detail: { hooks: w.size } }),
    }
  },
}
