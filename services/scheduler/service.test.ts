import t from 'tap'
import type { RecordedEvent } from '../../events/index.js'
import { plan, readModelsByType } from './service.js'

t.test('a release waits for the releases read model only, a scale for formation, a destroy for both', async (t) => {
  const byType = readModelsByType()
  t.same(byType.get('ReleaseCreated'), ['releases'])
  t.same(byType.get('FormationScaled'), ['formation'])
  t.same([...(byType.get('AppDestroyed') ?? [])].sort(), ['formation', 'releases'])
  t.equal(byType.get('RestartRequested'), undefined, 'applied by neither: the scheduler waits for both')
})

t.test('a batch asks one reconcile per run of releases and scales of an app; restarts and destroys keep their place', async (t) => {
  let seq = 0
  const ev = (type: string, app: string, data: Record<string, unknown> = {}) =>
    ({ type, seq: ++seq, stream: `app.${app}`, data: { app, ...data } }) as unknown as RecordedEvent
  const steps = plan([
    ev('ReleaseCreated', 'a', { version: 1 }),
    ev('ReleaseCreated', 'b', { version: 1 }),
    ev('ReleaseCreated', 'a', { version: 2 }),
    ev('FormationScaled', 'a'),
    ev('RestartRequested', 'a'),
    ev('ReleaseCreated', 'a', { version: 3 }),
    ev('AppDestroyed', 'b'),
    ev('ConfigSet', 'b'),
  ])
  t.same(
    [...steps].map(([app, es]) => [app, es.map((e) => `${e.type}@${e.seq}`)]),
    [
      ['a', ['FormationScaled@4', 'RestartRequested@5', 'ReleaseCreated@6']],
      ['b', ['ReleaseCreated@2', 'AppDestroyed@7']],
    ],
  )
})
