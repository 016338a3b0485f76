import t from 'tap'
import { readModelsByType } from './service.js'

t.test('a release waits for the releases read model only, a scale for formation, a destroy for both', async (t) => {
  const byType = readModelsByType()
  t.same(byType.get('ReleaseCreated'), ['releases'])
  t.same(byType.get('FormationScaled'), ['formation'])
  t.same([...(byType.get('AppDestroyed') ?? [])].sort(), ['formation', 'releases'])
  t.equal(byType.get('RestartRequested'), undefined, 'applied by neither: the scheduler waits for both')
})
