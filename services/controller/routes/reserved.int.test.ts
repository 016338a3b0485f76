/**
 * Issue 14, finding 2: a user cannot take the platform's own names. bob creates an app named
 * `wharf` (whose host `wharf.<domain>` is the controller's API) or adds the API's host, another app's
 * host or the router's probe host as a custom domain: each is refused with `WHARF_RESERVED` and
 * nothing is appended.
 */
import t from 'tap'
import { refused, registerAndLogin, startTestController } from '../testing.js'

t.test("bob cannot take the controller's, the router's or alice's host names", async (t) => {
  const c = await startTestController(t, { WHARF_DOMAIN: 'wharf.localhost' })
  await registerAndLogin(c, 'admin')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  t.equal((await c.call('POST', '/v1/apps', { token: bob, body: { name: 'bobapp' } })).status, 201)

  for (const name of ['wharf', 'www', 'api', 'admin', 'registry', 'git', 'wharf-router-probe']) {
    const res = await refused(t, c, 403, 'WHARF_RESERVED', 'POST', '/v1/apps', { token: bob, body: { name } })
    t.match(res.body.message, new RegExp(`the app name ${name} is reserved`), 'the message says why')
  }
  for (const domain of ['wharf.wharf.localhost', 'shop.wharf.localhost', 'wharf.localhost', 'wharf-router-probe.invalid']) {
    const res = await refused(t, c, 403, 'WHARF_RESERVED', 'POST', '/v1/apps/bobapp/domains', { token: bob, body: { domain } })
    t.match(res.body.message, `the domain ${domain} is reserved`)
  }
  const apps = await c.call('GET', '/v1/apps', { token: bob })
  t.same(
    apps.body.apps.map((a: { name: string }) => a.name),
    ['bobapp'],
    'bob has only his app',
  )
  t.same((await c.call('GET', '/v1/apps/bobapp/domains', { token: bob })).body.domains, [], 'and no domain')
  t.equal((await c.call('POST', '/v1/apps/bobapp/domains', { token: bob, body: { domain: 'bob.example.com' } })).status, 201, 'a domain of his own is fine')
})
