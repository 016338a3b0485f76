/**
 * TLS certificates through the real API (HTTP, NATS, Postgres, projector): add, list, attach,
 * detach, remove; bad pairs refused clearly with nothing appended; the key never answered, and
 * redacted in the events API; the router's query sees exactly the attached domains.
 */
import t from 'tap'
import { attachedCerts } from '../../../projections/index.js'
import { certMaker } from '../../../test/certs.js'
import { refused, registerAndLogin, startTestController } from '../testing.js'

t.test('certs: add, attach by SNI name, detach, remove; the key never leaves', async (t) => {
  const c = await startTestController(t)
  const { make } = certMaker(t)
  const alice = await registerAndLogin(c, 'alice')
  const carol = await registerAndLogin(c, 'carol')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  for (const domain of ['shop.example.com', 'www.example.com', 'a.b.example.com']) {
    t.equal((await c.call('POST', '/v1/apps/shop/domains', { token: alice, body: { domain } })).status, 201)
  }
  const wild = make({ cn: 'example.com', sans: ['*.example.com', 'example.com'] })
  const keyBody = wild.key.split('\n')[1]!

  const added = await c.call('POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: wild.cert, key: wild.key } })
  t.equal(added.status, 201, JSON.stringify(added.body))
  t.match(added.body.cert, { name: 'example-com', commonName: 'example.com', sans: ['*.example.com', 'example.com'], expired: false, domains: [] })
  t.notOk('key' in added.body.cert || 'privateKey' in added.body.cert, 'no key in the answer')
  const again = await c.call('POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: wild.cert, key: wild.key } })
  t.equal(again.status, 201, 'the same certificate again: a no-op')
  t.equal(again.body.cert.name, 'example-com')

  // Refusals: clear, and nothing appended.
  const other = make({ cn: 'other.example.com', sans: ['other.example.com'] })
  const old = make({ cn: 'old.example.com', sans: ['old.example.com'], expired: true })
  const mismatch = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: wild.cert, key: other.key } })
  t.equal(mismatch.body.message, 'the key does not match the certificate')
  const expired = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: old.cert, key: old.key } })
  t.equal(expired.body.message, 'the certificate expired on 2020-01-02T00:00:00.000Z')
  const garbage = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: 'garbage', key: 'garbage' } })
  t.match(garbage.body.message, /^no certificate/)
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', { token: alice, body: { certificate: wild.cert } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', {
    token: alice,
    body: { certificate: other.cert, key: other.key, name: 'Bad Name' },
  })
  await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/apps/shop/certs', {
    token: alice,
    body: { certificate: other.cert, key: other.key, name: 'example-com' },
  })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/certs', { token: carol, body: { certificate: other.cert, key: other.key } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/shop/certs', { token: carol })

  // Attach: a domain of the app that the certificate covers.
  const attached = await c.call('POST', '/v1/apps/shop/certs/example-com/attach', { token: alice, body: { domain: 'shop.example.com' } })
  t.equal(attached.status, 200, JSON.stringify(attached.body))
  t.same(attached.body.cert.domains, ['shop.example.com'])
  t.equal((await c.call('POST', '/v1/apps/shop/certs/example-com/attach', { token: alice, body: { domain: 'www.example.com' } })).status, 200)
  const uncovered = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs/example-com/attach', {
    token: alice,
    body: { domain: 'a.b.example.com' },
  })
  t.match(uncovered.body.message, 'is not valid for a.b.example.com')
  const notMine = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs/example-com/attach', {
    token: alice,
    body: { domain: 'x.example.com' },
  })
  t.match(notMine.body.message, 'x.example.com is not a domain of shop')
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/certs/nope/attach', { token: alice, body: { domain: 'shop.example.com' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/certs/example-com/attach', { token: carol, body: { domain: 'shop.example.com' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs/example-com/attach', { token: alice, body: { domain: 'a;b.com' } })

  const list = await c.call('GET', '/v1/apps/shop/certs', { token: alice })
  t.equal(list.status, 200)
  t.match(list.body.certs, [{ name: 'example-com', domains: ['shop.example.com', 'www.example.com'] }])

  // What the router reads: each attached domain with both PEMs.
  const routed = await attachedCerts(c.deps.pool)
  t.same(
    routed.map((r) => [r.domain, r.app, r.name]),
    [
      ['shop.example.com', 'shop', 'example-com'],
      ['www.example.com', 'shop', 'example-com'],
    ],
  )
  t.match(routed[0]!.certificate, /^-----BEGIN CERTIFICATE-----/)
  t.match(routed[0]!.key, /^-----BEGIN PRIVATE KEY-----/)

  // Detach, then remove (which detaches the rest).
  const detached = await c.call('POST', '/v1/apps/shop/certs/example-com/detach', { token: alice, body: { domain: 'shop.example.com' } })
  t.same(detached.body.cert.domains, ['www.example.com'])
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/certs/example-com/detach', { token: alice, body: { domain: 'shop.example.com' } })
  const removed = await c.call('DELETE', '/v1/apps/shop/certs/example-com', { token: alice })
  t.equal(removed.status, 200)
  t.same(removed.body.removed.domains, ['www.example.com'], 'the answer says what it was detached from')
  t.same((await c.call('GET', '/v1/apps/shop/certs', { token: alice })).body.certs, [])
  t.same(await attachedCerts(c.deps.pool), [], 'removed: the router serves it no more')
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', '/v1/apps/shop/certs/example-com', { token: alice })

  // The key is in no answer: not the list, not the events API (redacted by the projection).
  const everything = JSON.stringify([added.body, again.body, list.body, attached.body, detached.body, removed.body])
  t.notMatch(everything, keyBody, 'no answer holds the key')
  let events: { type: string; data: Record<string, unknown> }[] = []
  for (let i = 0; i < 50; i++) {
    events = (await c.call('GET', '/v1/events?app=shop&type=CertAdded', { token: alice })).body.events
    if (events.length) break
    await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(events.length, 1, 'one CertAdded (the repeat appended nothing)')
  t.equal(events[0]!.data.privateKey, '[redacted]')
  t.match(events[0]!.data.certificate, /BEGIN CERTIFICATE/, 'the certificate is public: shown')
  t.notMatch(JSON.stringify((await c.call('GET', '/v1/events?limit=1000', { token: alice })).body), keyBody, 'the key is in no event answer')
})

t.test('certs: a chain, a removed domain detaches, a destroyed app drops its certificates', async (t) => {
  const c = await startTestController(t)
  const { make } = certMaker(t)
  const alice = await registerAndLogin(c, 'alice')
  await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })
  await c.call('POST', '/v1/apps/shop/domains', { token: alice, body: { domain: 'shop.example.com' } })
  const ca = make({ cn: 'Wharf Test CA', ca: true })
  const leaf = make({ cn: 'shop.example.com', sans: ['shop.example.com'], issuer: ca })
  const outOfOrder = await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/certs', {
    token: alice,
    body: { certificate: ca.cert + leaf.cert, key: leaf.key },
  })
  t.match(outOfOrder.body.message, /^the chain is out of order/)
  const added = await c.call('POST', '/v1/apps/shop/certs', { token: alice, body: { name: 'main', certificate: leaf.cert + ca.cert, key: leaf.key } })
  t.equal(added.status, 201)
  t.equal((await c.call('POST', '/v1/apps/shop/certs/main/attach', { token: alice, body: { domain: 'shop.example.com' } })).status, 200)
  t.equal((await attachedCerts(c.deps.pool))[0]!.certificate.match(/BEGIN CERTIFICATE/g)!.length, 2, 'the router gets the whole chain')

  t.equal((await c.call('DELETE', '/v1/apps/shop/domains/shop.example.com', { token: alice })).status, 200)
  t.same((await c.call('GET', '/v1/apps/shop/certs', { token: alice })).body.certs[0].domains, [], 'a removed domain is detached')
  t.same(await attachedCerts(c.deps.pool), [])

  await c.call('DELETE', '/v1/apps/shop', { token: alice, body: { confirm: 'shop' } })
  await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })
  t.same((await c.call('GET', '/v1/apps/shop/certs', { token: alice })).body.certs, [], 'a new app of the same name starts with none')
})
