/** `wharf hooks:*` as a user runs them (`node bin/wharf`, compiled first), against a controller and webhooks service of the test's own. */
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { until } from '../test/harness.js'
import { registerAndLogin, startTestController } from '../services/controller/testing.js'
import { startTestWebhooks, subscriber } from '../services/webhooks/testing.js'
import { cli, fails, ok, requireBuilt } from './testing.js'

t.test('hooks:add, hooks:list, hooks:deliveries, hooks:redeliver and hooks:remove through bin/wharf, with --json', async (t) => {
  requireBuilt()
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const token = await registerAndLogin(c, 'alice')
  const bobToken = await registerAndLogin(c, 'bob')
  const alice = cli(t, c.url, token)
  const bob = cli(t, c.url, bobToken)
  await startTestWebhooks(t, c)
  const sub = await subscriber(t)
  await ok(t, alice.run(['apps:create', 'shop']), 'apps:create')
  const url = `http://127.0.0.1:${sub.port}/hook`

  const added = JSON.parse((await ok(t, alice.run(['hooks:add', url, '-a', 'shop', '--events', 'Config*,Release*', '--json']), 'hooks:add --json')).stdout)
  t.same(Object.keys(added).sort(), ['app', 'events', 'id', 'secret', 'url'])
  t.match(added, { url, app: 'shop', events: ['Config*', 'Release*'] })
  t.match(added.secret, /^whsec_/)
  const text = (await ok(t, alice.run(['hooks:add', `http://127.0.0.1:${sub.port}/all`]), 'hooks:add, platform-wide')).stdout
  t.match(text, /^Added hook hk_[0-9a-f]{16} -> .* \(the whole platform; events: all\)\.\nSigning secret \(shown once, keep it\): whsec_\S+\n$/)

  const list = (await ok(t, alice.run(['hooks:list']), 'hooks:list')).stdout
  t.match(list, /^ID\s+APP\s+URL\s+EVENTS\s+OWNER\s+STATUS\n/)
  t.match(list, new RegExp(`${added.id}\\s+shop\\s+${url.replace(/[.]/g, '\\.')}\\s+Config\\*,Release\\*\\s+alice\\s+active`))
  t.match(list, /\(platform\)/)
  t.notMatch(list, /whsec_/, 'no secret in the list')
  const listed = JSON.parse((await ok(t, alice.run(['hooks:list', '--json']), 'hooks:list --json')).stdout)
  t.equal(listed.hooks.length, 2)
  t.notMatch(JSON.stringify(listed), /whsec_/)
  t.equal((await ok(t, bob.run(['hooks:list']), 'bob: hooks:list')).stdout, 'No hooks.\n', "bob sees none of alice's hooks")
  await fails(t, bob.run(['hooks:remove', added.id]), 'WHARF_NOT_FOUND', "bob removes alice's hook")
  await fails(t, bob.run(['hooks:add', url]), 'WHARF_FORBIDDEN', 'bob adds a platform hook')

  await ok(t, alice.run(['config:set', 'A=1', '-a', 'shop']), 'config:set')
  const toApp = () => sub.got.find((r) => r.path === '/hook' && JSON.parse(r.body).type === 'ConfigSet')
  await until('the ConfigSet arrived', async () => toApp())
  const got = toApp()!
  t.match(new Webhook(added.secret).verify(got.body, got.headers), { type: 'ConfigSet', app: 'shop' }, 'verified with the secret hooks:add printed')

  const deliveries = await until('hooks:deliveries shows it', async () => {
    const r = await alice.run(['hooks:deliveries', added.id, '--json'])
    const body = r.code === 0 && JSON.parse(r.stdout)
    return body?.attempts.some((a: any) => a.type === 'ConfigSet') && body
  })
  const attempt = deliveries.attempts.find((a: any) => a.type === 'ConfigSet')
  t.match(attempt, { status: 204, delivery: got.headers['webhook-id'] })
  const table = (await ok(t, alice.run(['hooks:deliveries', added.id]), 'hooks:deliveries')).stdout
  t.match(table, /^Hook hk_\S+ -> \S+: active\nAT\s+DELIVERY\s+EVENT\s+STATUS\s+DURATION\s+RESULT\s+REDELIVERY\n/)
  t.match(table, new RegExp(`${attempt.delivery}\\s+\\d+ ConfigSet\\s+204\\s+\\d+ ms\\s+ok`))

  const redo = (await ok(t, alice.run(['hooks:redeliver', added.id, attempt.delivery]), 'hooks:redeliver')).stdout
  t.match(redo, /^Redelivered: HTTP 204 in \d+ ms\.\n$/)
  const redoJson = JSON.parse((await ok(t, alice.run(['hooks:redeliver', added.id, attempt.delivery, '--json']), 'hooks:redeliver --json')).stdout)
  t.match(redoJson, { request: /^rd_/, attempt: { status: 204, delivery: attempt.delivery } })
  await fails(t, alice.run(['hooks:redeliver', added.id, 'nope']), 'WHARF_NOT_FOUND', 'an unknown delivery')

  await fails(t, alice.run(['hooks:add', 'ftp://example.com/', '-a', 'shop']), 'WHARF_INVALID', 'not http(s)')
  await fails(t, alice.run(['hooks:add', 'http://10.0.0.1/', '-a', 'shop']), 'WHARF_FORBIDDEN', 'a private address')
  await fails(t, alice.run(['hooks:add', url, '-a', 'shop', '--events', 'not a type']), 'WHARF_INVALID', 'a bad pattern')

  t.match((await ok(t, alice.run(['hooks:remove', added.id]), 'hooks:remove')).stdout, `Removed hook ${added.id}.`)
  t.same(JSON.parse((await ok(t, alice.run(['hooks:remove', listed.hooks[1].id, '--json']), 'hooks:remove --json')).stdout), { id: listed.hooks[1].id })
  t.equal((await ok(t, alice.run(['hooks:list']), 'hooks:list')).stdout, 'No hooks.\n')
  await fails(t, alice.run(['hooks:deliveries', added.id]), 'WHARF_NOT_FOUND', 'deliveries of a removed hook')
})
