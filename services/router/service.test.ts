import t from 'tap'
import { wharfCatalogue } from '../../domain/index.js'
import { readModelsByType, ROUTE_EVENTS } from './service.js'

t.test('every event that changes routes is a catalogued type that a read model of the router applies', async (t) => {
  const types = new Set(wharfCatalogue().types())
  const byType = readModelsByType()
  for (const type of ROUTE_EVENTS) {
    t.ok(types.has(type), `${type} is in the catalogue`)
    t.ok((byType.get(type) ?? []).length > 0, `${type} is applied by ${byType.get(type)?.join(', ') || 'no read model the router reads'}`)
  }
  t.same(byType.get('ContainerStarted'), ['containers'], 'a container event waits for the containers read model only')
})
