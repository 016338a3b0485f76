/**
 * Issue 14, finding 7 through the API: bob cannot own more apps than `WHARF_APPS_PER_USER`, nor
 * scale his apps past `WHARF_REPLICAS_PER_USER` processes together; each is refused with
 * `WHARF_QUOTA` naming the setting, nothing is recorded, and alice's quota is her own.
 */
import t from 'tap'
import { refused, registerAndLogin, startTestController } from '../testing.js'

t.test('apps and replicas per user', async (t) => {
  const c = await startTestController(t, { WHARF_APPS_PER_USER: '2', WHARF_REPLICAS_PER_USER: '3' })
  const admin = await registerAndLogin(c, 'admin')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  for (const name of ['bob1', 'bob2']) t.equal((await c.call('POST', '/v1/apps', { token: bob, body: { name } })).status, 201, name)
  const res = await refused(t, c, 403, 'WHARF_QUOTA', 'POST', '/v1/apps', { token: bob, body: { name: 'bob3' } })
  t.match(res.body.message, 'bob owns 2 apps, the most a user may (WHARF_APPS_PER_USER=2)')
  await refused(t, c, 403, 'WHARF_QUOTA', 'POST', '/v1/apps', { token: bob, body: {} })
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201, "alice's quota is her own")
  t.equal((await c.call('POST', '/v1/apps', { token: admin, body: { name: 'ops1' } })).status, 201, 'admins have none')

  t.equal((await c.call('POST', '/v1/apps/bob1/formation', { token: bob, body: { web: 2 } })).status, 200, 'bob1 web=2')
  const scale = await refused(t, c, 403, 'WHARF_QUOTA', 'POST', '/v1/apps/bob2/formation', { token: bob, body: { web: 2 } })
  t.match(scale.body.message, "bob's apps would run 4 processes, more than a user's apps may (WHARF_REPLICAS_PER_USER=3)")
  t.not((await c.call('GET', '/v1/apps/bob2/formation', { token: bob })).body.formation.web, 2, 'bob2 unchanged')
  t.equal((await c.call('POST', '/v1/apps/bob2/formation', { token: bob, body: { web: 1 } })).status, 200, 'up to the quota goes')
  t.equal((await c.call('POST', '/v1/apps/bob1/formation', { token: bob, body: { web: 1 } })).status, 200, 'scaling down always goes')
  t.equal((await c.call('POST', '/v1/apps/shop/formation', { token: alice, body: { web: 3 } })).status, 200, "alice's replicas are her own")
})

t.test("one user's commands at once never pass a quota together", async (t) => {
  const c = await startTestController(t, { WHARF_APPS_PER_USER: '3', WHARF_REPLICAS_PER_USER: '4' })
  await registerAndLogin(c, 'admin')
  const carol = await registerAndLogin(c, 'carol')
  const dave = await registerAndLogin(c, 'dave')

  // apps:create x8 at once (five with names, three generated), with dave's beside them.
  const creates = await Promise.all([
    ...['c1', 'c2', 'c3', 'c4', 'c5', undefined, undefined, undefined].map((name) => c.call('POST', '/v1/apps', { token: carol, body: name ? { name } : {} })),
    c.call('POST', '/v1/apps', { token: dave, body: { name: 'd1' } }),
  ])
  const mine = creates.slice(0, 8)
  t.equal(mine.filter((r) => r.status === 201).length, 3, "three of carol's eight apps:create go")
  t.ok(
    mine.filter((r) => r.status !== 201).every((r) => r.status === 403 && r.body.code === 'WHARF_QUOTA'),
    'the others: WHARF_QUOTA',
  )
  t.equal(creates[8]!.status, 201, "dave's quota is his own")
  const owned = ((await c.call('GET', '/v1/apps', { token: carol })).body.apps as { name: string; owner: string }[]).filter((a) => a.owner === 'carol')
  t.equal(owned.length, 3, 'carol owns three apps')

  // ps:scale x6 at once over her three apps: together at most 4 processes.
  const apps = owned.map((a) => a.name)
  const scales = await Promise.all([2, 3].flatMap((n) => apps.map((app) => c.call('POST', `/v1/apps/${app}/formation`, { token: carol, body: { web: n } }))))
  t.ok(
    scales.every((r) => r.status === 200 || (r.status === 403 && r.body.code === 'WHARF_QUOTA')),
    'each goes or is refused with WHARF_QUOTA',
  )
  t.ok(
    scales.some((r) => r.status === 200),
    'some go',
  )
  let total = 0
  for (const app of apps)
    total += Object.values((await c.call('GET', `/v1/apps/${app}/formation`, { token: carol })).body.formation as Record<string, number>).reduce(
      (a, b) => a + b,
      0,
    )
  t.ok(total <= 4, `carol's apps run ${total} processes, at most WHARF_REPLICAS_PER_USER=4`)
})
