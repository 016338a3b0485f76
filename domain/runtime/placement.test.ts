import t from 'tap'
import { checkPlacement, isPlacementKey, parseConstraint, placementKey, placementOf } from './placement.js'

t.test('constraints Swarm takes are accepted and normalised; anything else is refused', async (t) => {
  t.equal(parseConstraint('node.labels.zone == a'), 'node.labels.zone==a')
  t.equal(parseConstraint('node.role!=manager'), 'node.role!=manager')
  t.equal(parseConstraint('engine.labels.disk==ssd'), 'engine.labels.disk==ssd')
  t.equal(parseConstraint('node.platform.arch==x86_64'), 'node.platform.arch==x86_64')
  for (const bad of [
    '',
    'zone==a',
    'node.labels.zone=a',
    'node.labels.zone==',
    'node.labels.zone==a b',
    'node.labels.z;x==a',
    'node.labels.zone==$(id)',
    'node.ip==1',
  ])
    t.equal(parseConstraint(bad), undefined, JSON.stringify(bad))
})

t.test('a placement setting is checked before it is recorded', async (t) => {
  t.equal(checkPlacement('WHARF_PLACEMENT', 'node.labels.zone==a; node.role!=manager'), undefined)
  t.equal(checkPlacement('WHARF_PLACEMENT_WEB', 'node.labels.zone==b'), undefined)
  t.equal(checkPlacement('WHARF_PLACEMENT_SPREAD', 'zone;rack'), undefined)
  t.equal(checkPlacement('WHARF_PLACEMENT_WEB', ''), undefined, 'empty: no constraint')
  t.match(checkPlacement('WHARF_PLACEMENT_WEB', 'zone==a'), /is not a placement constraint/)
  t.match(checkPlacement('WHARF_PLACEMENT_SPREAD', 'node.labels.zone==a'), /not a node label name/)
  t.match(checkPlacement('WHARF_PLACEMENT', Array.from({ length: 11 }, (_, i) => `node.labels.l${i}==x`).join(';')), /at most 10/)
  t.ok(isPlacementKey('WHARF_PLACEMENT') && isPlacementKey('WHARF_PLACEMENT_WORKER') && !isPlacementKey('PLACEMENT'))
})

t.test('a type takes its own constraints, else the app-wide ones; spread applies to every type', async (t) => {
  const config = { WHARF_PLACEMENT: 'node.labels.zone!=c', WHARF_PLACEMENT_WEB: 'node.labels.zone==a', WHARF_PLACEMENT_SPREAD: 'zone' }
  t.strictSame(placementOf(config, 'web'), { constraints: ['node.labels.zone==a'], spread: ['zone'] })
  t.strictSame(placementOf(config, 'worker'), { constraints: ['node.labels.zone!=c'], spread: ['zone'] })
  t.strictSame(placementOf({}, 'web'), { constraints: [], spread: [] })
  t.equal(placementKey('long-job'), 'WHARF_PLACEMENT_LONG_JOB')
})
