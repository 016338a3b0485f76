/**
 * Issue 14, finding 6 through the API: bob's log drains cannot point at the platform itself (the
 * logger's own syslog port, Postgres, NATS, the controller, the store), nor at the cloud metadata
 * address, even when the operator allows loopback; each is refused with a clear error and nothing
 * is recorded. The connection-time check (a name that resolves elsewhere later) is core/outbound's
 * `outboundLookup`, which the logger's drains connect through (core/outbound.test.ts).
 */
import t from 'tap'
import { refused, registerAndLogin, startTestController } from '../testing.js'

t.test("bob's drains cannot reach the platform's ports or the metadata service", async (t) => {
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1', WHARF_CONTROLLER_PORT: '18000' })
  await registerAndLogin(c, 'admin')
  const bob = await registerAndLogin(c, 'bob')
  t.equal((await c.call('POST', '/v1/apps', { token: bob, body: { name: 'bobapp' } })).status, 201)
  const { ports } = c.deps.cfg
  const path = '/v1/apps/bobapp/drains'
  const targets: [string, RegExp][] = [
    [`syslog://127.0.0.1:${ports.syslog}`, /port \d+ of 127\.0\.0\.1 is one of the platform's own/],
    [`syslog://127.0.0.1:${ports.postgres}`, /one of the platform's own/],
    [`syslog://127.0.0.1:${ports.nats}`, /one of the platform's own/],
    [`https://127.0.0.1:${ports.controller}/v1/apps`, /one of the platform's own/],
    [`syslog://localhost:${ports.s3}`, /one of the platform's own/],
    [`syslog://127.0.0.1:${ports.registry}`, /one of the platform's own/],
    ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    ['syslog://10.1.2.3:514', /10\.1\.2\.3 is a private address/],
  ]
  for (const [url, why] of targets) {
    const res = await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', path, { token: bob, body: { url } })
    t.match(res.body.message, why, url)
  }
  t.same((await c.call('GET', path, { token: bob })).body.drains, [], 'no drain was added')
  t.equal((await c.call('POST', path, { token: bob, body: { url: 'syslog://127.0.0.1:1514' } })).status, 201, 'a loopback port the operator allows goes')
})
