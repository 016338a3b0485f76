import t from 'tap'
import { identityOfTask, LABELS, processLabels, slotOf } from './labels.js'

t.test('processLabels: namespace, app, type, release; identityOfTask reads them back from a task record, with its slot', async (t) => {
  const labels = processLabels('wharf', 'shop', 'web', 4)
  t.same(labels, { 'wharf.namespace': 'wharf', 'wharf.app': 'shop', 'wharf.type': 'web', 'wharf.release': '4' })
  const service = { ...processLabels('wharf', 'shop', 'web', 5), [LABELS.spec]: '0123456789abcdef' }
  t.same(identityOfTask('wharf', { serviceLabels: service, specLabels: labels }), { app: 'shop', type: 'web', release: 4 }, "the task's release")
  t.same(identityOfTask('wharf', { serviceLabels: service, specLabels: labels, slot: 3 }), { app: 'shop', type: 'web', release: 4, number: 3 })
  t.equal(identityOfTask('other', { serviceLabels: service, specLabels: labels }), undefined, 'a service of another namespace')
  t.equal(identityOfTask('wharf', { serviceLabels: { [LABELS.namespace]: 'wharf' }, specLabels: labels }), undefined, 'a service without app labels')
  t.equal(
    identityOfTask('wharf', { serviceLabels: service, specLabels: processLabels('wharf', 'alice', 'web', 4) }),
    undefined,
    'a spec that names another app than its service',
  )
  t.equal(identityOfTask('wharf', { serviceLabels: service, specLabels: { ...labels, [LABELS.release]: 'x' } }), undefined, 'a bad release')
  t.equal(identityOfTask('wharf', { serviceLabels: undefined, specLabels: labels }), undefined, 'no service')
  t.equal(slotOf('wharf-shop-web.0.abc'), undefined, 'slots start at 1')
  t.equal(slotOf('wharf-shop-web.2.abc'), 2)
})
