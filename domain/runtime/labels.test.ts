import t from 'tap'
import { identityOf, LABELS, processLabels, slotOf } from './labels.js'

t.test('processLabels: namespace, app, type, release; identityOf reads them back, with the Swarm slot', async (t) => {
  const labels = processLabels('wharf', 'shop', 'web', 4)
  t.same(labels, { 'wharf.namespace': 'wharf', 'wharf.app': 'shop', 'wharf.type': 'web', 'wharf.release': '4' })
  t.same(identityOf(labels), { app: 'shop', type: 'web', release: 4 })
  t.same(identityOf({ ...labels, [LABELS.taskName]: 'wharf-shop-web.3.x1y2z3' }), { app: 'shop', type: 'web', release: 4, number: 3 })
  t.equal(identityOf({ [LABELS.namespace]: 'wharf' }), undefined, 'a container of the namespace without app labels is not a process')
  t.equal(slotOf('wharf-shop-web.0.abc'), undefined, 'slots start at 1')
})
