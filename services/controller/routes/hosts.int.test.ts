/**
 * `GET /v1/admin/hosts` (`wharf admin:hosts`) against the test platform's engine: its swarm's nodes
 * for an admin; refused to others and when no engine is configured.
 */
import t from 'tap'
import { registerAndLogin, startEngineController, startTestController } from '../testing.js'

t.test("admin:hosts lists the swarm's nodes to admins only", async (t) => {
  const c = await startEngineController(t)
  const admin = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const res = await c.call('GET', '/v1/admin/hosts', { token: admin })
  t.equal(res.status, 200)
  const hosts = res.body.hosts as { role: string; state: string; availability: string; address: string; leader: boolean; labels: object }[]
  t.ok(hosts.length >= 1)
  const leader = hosts.find((h) => h.leader)
  t.match(leader, { role: 'manager', state: 'ready', availability: 'active', labels: {} })
  t.match(leader?.address, /^\d+\.\d+\.\d+\.\d+$/)
  const refused = await c.call('GET', '/v1/admin/hosts', { token: bob })
  t.equal(refused.status, 403)
  t.equal(refused.body.code, 'WHARF_FORBIDDEN')
  t.equal((await c.call('GET', '/v1/admin/hosts')).status, 401, 'not signed in')
})

t.test('admin:hosts without an engine: unavailable, with the variable named', async (t) => {
  const c = await startTestController(t)
  const admin = await registerAndLogin(c, 'alice')
  const res = await c.call('GET', '/v1/admin/hosts', { token: admin })
  t.equal(res.status, 503)
  t.equal(res.body.code, 'WHARF_UNAVAILABLE')
  t.match(res.body.message, /WHARF_DOCKER_HOST/)
})
