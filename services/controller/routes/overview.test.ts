import t from 'tap'
import { type AppOverview, statusOf } from './overview.js'

const base: Omit<AppOverview, 'status'> = {
  name: 'shop',
  owner: 'alice',
  url: 'http://shop.wharf.localhost:8080',
  release: { version: 3, summary: 'deploy', created: '2026-12-07T09:00:00Z' },
  processes: { web: { running: 2, desired: 2 } },
  lastDeploy: { outcome: 'completed', release: 3, at: '2026-12-07T09:00:01Z' },
}

t.test('statusOf: maintenance first, then the last deploy, then processes', async (t) => {
  t.equal(statusOf(base, true), 'maintenance')
  t.equal(statusOf(base, false), 'up')
  t.equal(statusOf({ ...base, lastDeploy: { ...base.lastDeploy!, outcome: 'started' } }, false), 'deploying')
  t.equal(statusOf({ ...base, lastDeploy: { ...base.lastDeploy!, outcome: 'failed' } }, false), 'failed')
  t.equal(statusOf({ ...base, processes: { web: { running: 1, desired: 2 } } }, false), 'degraded')
  t.equal(statusOf({ ...base, processes: { web: { running: 0, desired: 0 } } }, false), 'idle')
  t.equal(statusOf({ ...base, release: { ...base.release!, version: 1 }, lastDeploy: null, processes: {} }, false), 'new')
})
