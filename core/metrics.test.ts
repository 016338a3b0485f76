import t from 'tap'
import { BoundedLabel, isLoopback, OTHER, observeAppended, registry } from './metrics.js'

const value = async (name: string, labels: Record<string, string>) => {
  const m = (await registry.getSingleMetric(name)?.get())?.values ?? []
  return m.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0)
}

t.test('BoundedLabel: the first max values keep their name, later ones are _other', async (t) => {
  const l = new BoundedLabel(2)
  t.same(
    ['a', 'b', 'c', 'a', 'd', 'b'].map((v) => l.of(v)),
    ['a', 'b', OTHER, 'a', OTHER, 'b'],
  )
})

t.test('isLoopback: IPv4 127/8, ::1 and IPv4-mapped; nothing else', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(a), a)
  for (const a of [undefined, '', '10.0.0.1', '::ffff:10.0.0.1', '1127.0.0.1', '127.0.0.1.evil', '::2']) t.notOk(isLoopback(a), String(a))
})

t.test('observeAppended: events by type; builds and deploys by outcome, timed from their start', async (t) => {
  const at = (s: number) => new Date(Date.UTC(2026, 11, 7, 9, 0, s)).toISOString()
  const before = {
    events: await value('wharf_events_appended_total', { type: 'BuildStarted' }),
    ok: await value('wharf_builds_total', { outcome: 'succeeded' }),
    failed: await value('wharf_deploys_total', { outcome: 'failed' }),
    completed: await value('wharf_deploys_total', { outcome: 'completed' }),
  }
  observeAppended([
    { type: 'BuildStarted', stream: 'build.x', occurredAt: at(0), data: { app: 'shop' } },
    { type: 'BuildSucceeded', stream: 'build.x', occurredAt: at(4), data: { app: 'shop' } },
    { type: 'DeployStarted', stream: 'runtime.shop', occurredAt: at(5), data: { app: 'shop', release: 3 } },
    { type: 'DeployFailed', stream: 'runtime.shop', occurredAt: at(7), data: { app: 'shop', release: 3 } },
  ])
  t.equal((await value('wharf_events_appended_total', { type: 'BuildStarted' })) - before.events, 1)
  t.equal((await value('wharf_builds_total', { outcome: 'succeeded' })) - before.ok, 1)
  t.equal((await value('wharf_deploys_total', { outcome: 'failed' })) - before.failed, 1)
  t.equal((await value('wharf_deploys_total', { outcome: 'completed' })) - before.completed, 0, 'a failed deploy is not counted completed')
  const text = await registry.metrics()
  t.match(text, /wharf_build_duration_seconds_sum\{outcome="succeeded"\} 4\b/, 'the build took 4 s')
  t.match(text, /wharf_deploy_duration_seconds_sum\{outcome="failed"\} 2\b/, 'the deploy took 2 s')
  // A finish whose start this process never saw is counted, not timed.
  observeAppended([{ type: 'DeployCompleted', stream: 'runtime.shop', occurredAt: at(9), data: { app: 'shop', release: 9 } }])
  t.equal((await value('wharf_deploys_total', { outcome: 'completed' })) - before.completed, 1)
  t.notMatch(await registry.metrics(), /wharf_deploy_duration_seconds_count\{outcome="completed"\} [1-9]/)
})
