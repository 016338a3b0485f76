/**
 * Apps through the real API (HTTP, NATS, Postgres, projector): apps, config, releases, formation,
 * domains, limits, perms and maintenance; the authz matrix; bad input appends nothing;
 * read-your-writes; concurrent writers.
 */
import t, { type Test } from 'tap'
import { refused, registerAndLogin, startTestController, type TestController } from '../testing.js'

interface World {
  c: TestController
  /** root is the admin (registered first), alice owns `shop`, bob collaborates on it, carol is a stranger. */
  root: string
  alice: string
  bob: string
  carol: string
}

async function world(t: Test): Promise<World> {
  const c = await startTestController(t)
  const root = await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const carol = await registerAndLogin(c, 'carol')
  await registerAndLogin(c, 'dave')
  const created = await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })
  if (created.status !== 201) throw new Error(`create shop: ${created.status} ${JSON.stringify(created.body)}`)
  const shared = await c.call('POST', '/v1/apps/shop/perms', { token: alice, body: { username: 'bob' } })
  if (shared.status !== 201) throw new Error(`share shop: ${shared.status} ${JSON.stringify(shared.body)}`)
  return { c, root, alice, bob, carol }
}

t.test('apps: create, list, info, transfer, destroy', async (t) => {
  const { c, root, alice, bob, carol } = await world(t)

  const info = await c.call('GET', '/v1/apps/shop', { token: alice })
  t.equal(info.status, 200)
  t.match(info.body, {
    name: 'shop',
    owner: 'alice',
    url: /^http:\/\/shop\.[^:]+:\d+$/,
    maintenance: false,
    domains: [],
    formation: {},
    collaborators: ['bob'],
  })
  t.match(info.body.release, { version: 1, image: null, summary: 'alice created shop', by: 'alice' })

  const gen = await c.call('POST', '/v1/apps', { token: carol, body: {} })
  t.equal(gen.status, 201)
  t.match(gen.body.name, /^[a-z]+-[a-z]+-\d{4}$/, 'a generated name')
  t.equal(gen.body.owner, 'carol')

  await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/apps', { token: carol, body: { name: 'shop' } })
  const bare = await c.call('POST', '/v1/apps', { token: carol })
  t.equal(bare.status, 201, 'no body at all: a generated name')
  await c.call('DELETE', `/v1/apps/${bare.body.name}`, { token: carol, body: { confirm: bare.body.name } })

  const openapi = await c.call('GET', '/v1/openapi.json')
  t.equal(openapi.status, 200)
  for (const path of [
    '/v1/apps',
    '/v1/apps/{app}/config',
    '/v1/apps/{app}/releases/rollback',
    '/v1/apps/{app}/domains/{domain}',
    '/v1/apps/{app}/perms/{username}',
  ]) {
    t.ok(openapi.body.paths[path], `openapi documents ${path}`)
  }

  const list = async (token: string) => ((await c.call('GET', '/v1/apps', { token })).body.apps as { name: string }[]).map((a) => a.name).sort()
  t.same(await list(alice), ['shop'])
  t.same(await list(bob), ['shop'], 'a collaborator sees it')
  t.same(await list(carol), [gen.body.name], 'a stranger does not')
  t.same(await list(root), [gen.body.name, 'shop'].sort(), 'the admin sees all')

  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/transfer', { token: alice, body: { owner: 'nobody' } })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/apps/shop/transfer', { token: bob, body: { owner: 'bob' } })
  const moved = await c.call('POST', '/v1/apps/shop/transfer', { token: alice, body: { owner: 'carol' } })
  t.equal(moved.status, 200)
  t.equal(moved.body.owner, 'carol')
  t.equal((await c.call('GET', '/v1/apps/shop', { token: alice })).status, 404, 'the old owner no longer sees it')
  t.equal((await c.call('GET', '/v1/apps/shop', { token: carol })).body.owner, 'carol')

  await refused(t, c, 400, 'WHARF_INVALID', 'DELETE', '/v1/apps/shop', { token: carol, body: { confirm: 'shoe' } })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'DELETE', '/v1/apps/shop', { token: bob, body: { confirm: 'shop' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', '/v1/apps/shop', { token: alice, body: { confirm: 'shop' } })
  const gone = await c.call('DELETE', '/v1/apps/shop', { token: carol, body: { confirm: 'shop' } })
  t.same(gone.body, { name: 'shop', destroyed: true })
  t.equal((await c.call('GET', '/v1/apps/shop', { token: root })).status, 404, 'destroyed: gone even for the admin')
  const again = await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })
  t.equal(again.status, 201, 'the name may be used again')
  t.equal(again.body.release.version, 1, 'from v1')
  t.same(again.body.collaborators, [], 'with no collaborators')
})

t.test('authz matrix: no token, stranger, collaborator, owner, admin', async (t) => {
  const { c, root, alice, bob, carol } = await world(t)
  const endpoints: { method: string; path: string; body?: unknown; manage?: boolean; ok: number }[] = [
    { method: 'GET', path: '/v1/apps/shop', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/config', ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/config', body: { values: { A: '1' } }, ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/config/unset', body: { keys: ['A'] }, ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/releases', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/releases/v1', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/formation', ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/formation', body: { web: 1 }, ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/processes', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/domains', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/limits', ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/limits', body: { memory: { web: '256M' } }, ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/limits/unset', body: { memory: ['web'] }, ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/perms', ok: 200 },
    { method: 'GET', path: '/v1/apps/shop/maintenance', ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/maintenance', body: { enabled: false }, ok: 200 },
    { method: 'POST', path: '/v1/apps/shop/perms', body: { username: 'dave' }, manage: true, ok: 201 },
    { method: 'POST', path: '/v1/apps/shop/transfer', body: { owner: 'alice' }, manage: true, ok: 200 },
    { method: 'DELETE', path: '/v1/apps/shop', body: { confirm: 'shop' }, manage: true, ok: 200 },
  ]
  for (const e of endpoints) {
    const opts = e.body === undefined ? {} : { body: e.body }
    await refused(t, c, 401, 'WHARF_UNAUTHORIZED', e.method, e.path, opts)
    await refused(t, c, 401, 'WHARF_UNAUTHORIZED', e.method, e.path, { ...opts, token: 'not-a-token' })
    await refused(t, c, 404, 'WHARF_NOT_FOUND', e.method, e.path, { ...opts, token: carol })
    if (e.manage) await refused(t, c, 403, 'WHARF_FORBIDDEN', e.method, e.path, { ...opts, token: bob })
    else t.equal((await c.call(e.method, e.path, { ...opts, token: bob })).status, e.ok, `collaborator ${e.method} ${e.path}`)
    if (e.method !== 'DELETE') t.equal((await c.call(e.method, e.path, { ...opts, token: alice })).status, e.ok, `owner ${e.method} ${e.path}`)
    else t.equal((await c.call(e.method, e.path, { ...opts, token: root })).status, e.ok, `admin ${e.method} ${e.path}`)
    if (e.method === 'GET') t.equal((await c.call(e.method, e.path, { ...opts, token: root })).status, e.ok, `admin ${e.method} ${e.path}`)
  }
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/apps')
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'POST', '/v1/apps', { body: { name: 'nope' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/nosuchapp', { token: alice })
  // The stranger cannot tell a hidden app from a missing one.
  const hidden = await c.call('GET', '/v1/apps/shop', { token: carol })
  const missing = await c.call('GET', '/v1/apps/nosuchapp', { token: carol })
  t.equal(hidden.status, missing.status)
})

t.test('bad input: 4xx with a code, and nothing appended', async (t) => {
  const { c, alice } = await world(t)
  const token = alice
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, rawBody: '{"name": "sh' })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, body: { name: 'Bad_Name' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, body: { name: '-shop' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, body: { name: 'a'.repeat(31) } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, body: { name: 12345 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps', { token, body: { name: 'ok', extra: 1 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', '/v1/apps/Bad_Name', { token })

  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, rawBody: 'not json' })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { lower: 'x' } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { '1ABC': 'x' } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { A: 1 } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: 'A=1' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { A: '1' }, extra: true } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { ['K'.repeat(129)]: 'x' } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', { token, body: { values: { BIG: 'x'.repeat(32 * 1024 + 1) } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config', {
    token,
    body: { values: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`K${i}`, 'v'])) },
  })
  await refused(t, c, 413, 'WHARF_TOO_LARGE', 'POST', '/v1/apps/shop/config', { token, body: { values: { A: 'x'.repeat(2 * 1024 * 1024) } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config/unset', { token, body: { keys: [] } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/config/unset', { token, body: { keys: ['bad key'] } })

  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/formation', { token, body: { web: -1 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/formation', { token, body: { web: 101 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/formation', { token, body: { web: 'two' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/formation', { token, body: { Web: 1 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/formation', { token, body: {} })

  for (const domain of [
    'Shop.example.com',
    'localhost',
    'a..b.com',
    '-a.example.com',
    'a b.com',
    'a;b.com',
    'a{b}.com',
    'é.example.com',
    '"a".com',
    `${'a.'.repeat(127)}com`,
  ]) {
    await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/domains', { token, body: { domain } })
  }
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/limits', { token, body: { memory: { web: 'lots' } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/limits', { token, body: { cpu: { web: 0 } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/limits', { token, body: { cpu: { web: '0.5' } } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/maintenance', { token, body: { enabled: 'yes' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/perms', { token, body: { username: 'Bob!' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/perms', { token, body: { username: 'nobody' } })
  await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/apps/shop/perms', { token, body: { username: 'bob' } })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', '/v1/apps/shop/perms/carol', { token })
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', '/v1/apps/shop/releases/vx', { token })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/shop/releases/v9', { token })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/releases/rollback', { token, body: { version: 9 } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/releases/rollback', { token, body: {} })
})

t.test('config: read your writes, unset, and two concurrent writers both land', async (t) => {
  const { c, alice, bob } = await world(t)
  const set = await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: 'bar', EMPTY: '' } } })
  t.same(set.body, { values: { EMPTY: '', FOO: 'bar' } })
  t.same((await c.call('GET', '/v1/apps/shop/config', { token: bob })).body, { values: { EMPTY: '', FOO: 'bar' } }, 'the next read sees it')

  const unset = await c.call('POST', '/v1/apps/shop/config/unset', { token: alice, body: { keys: ['EMPTY', 'NOT_SET'] } })
  t.same(unset.body, { values: { FOO: 'bar' } }, 'keys not set are ignored')
  const del = await c.call('DELETE', '/v1/apps/shop/config', { token: alice, body: { keys: ['FOO'] } })
  t.same(del.body, { values: {} })

  const before = (await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases.length
  const writers = await Promise.all(
    Array.from({ length: 6 }, (_, i) => c.call('POST', '/v1/apps/shop/config', { token: i % 2 ? alice : bob, body: { values: { [`W${i}`]: String(i) } } })),
  )
  t.same(
    writers.map((w) => w.status),
    [200, 200, 200, 200, 200, 200],
  )
  const after = (await c.call('GET', '/v1/apps/shop/config', { token: alice })).body.values
  t.same(after, { W0: '0', W1: '1', W2: '2', W3: '3', W4: '4', W5: '5' }, 'no write was lost')
  const releases = (await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases
  t.equal(releases.length, before + 6, 'one release each')
  t.same(releases[0].configKeys, ['W0', 'W1', 'W2', 'W3', 'W4', 'W5'])
  const versions = releases.map((r: { version: number }) => r.version)
  t.same(
    versions,
    [...versions].sort((a: number, b: number) => b - a),
    'newest first',
  )
  t.same(new Set(versions).size, versions.length, 'versions are unique')
})

t.test('config values reach the read models byte for byte (their statements carry them as SQL literals)', async (t) => {
  const { c, alice } = await world(t)
  const values = {
    QUOTE: "it's",
    BACKSLASH: 'a\\b\\',
    PLACEHOLDER: '$1 $2',
    ESCAPE: "E'\\x41'",
    INJECT: "'); DROP TABLE config; --",
    MULTILINE: 'one\ntwo\r\n',
    UNICODE: 'caf\u00e9 \u{1F680}',
  }
  const set = await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values } })
  t.equal(set.status, 200)
  t.same((await c.call('GET', '/v1/apps/shop/config', { token: alice })).body.values, values, 'config:list gives them back as set')
  const release = (await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases[0]
  t.same((await c.call('GET', `/v1/apps/shop/releases/v${release.version}`, { token: alice })).body.config, values, 'and the release holds them')
  const next = await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { AFTER: '1' } } })
  t.same(next.body.values, { ...values, AFTER: '1' }, 'the read model still works after them')
})

t.test('releases v1..v3 then rollback', async (t) => {
  const { c, alice } = await world(t)
  await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: '1' } } })
  await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: '2', BAR: 'x' } } })
  const list = await c.call('GET', '/v1/apps/shop/releases', { token: alice })
  t.match(list.body.releases, [
    { version: 3, summary: 'alice set FOO, BAR', configKeys: ['BAR', 'FOO'], by: 'alice' },
    { version: 2, summary: 'alice set FOO', configKeys: ['FOO'] },
    { version: 1, summary: 'alice created shop', configKeys: [] },
  ])
  t.equal(list.body.releases[0].config, undefined, 'listings show keys, not values')
  const v2 = await c.call('GET', '/v1/apps/shop/releases/v2', { token: alice })
  t.same(v2.body.config, { FOO: '1' })
  t.same((await c.call('GET', '/v1/apps/shop/releases/2', { token: alice })).body, v2.body, '"2" and "v2" are the same')

  const back = await c.call('POST', '/v1/apps/shop/releases/rollback', { token: alice, body: {} })
  t.equal(back.status, 201)
  t.match(back.body, { version: 4, rollbackOf: 2, config: { FOO: '1' }, summary: 'alice rolled back to v2' })
  t.equal(back.body.configHash, v2.body.configHash)
  t.same((await c.call('GET', '/v1/apps/shop/config', { token: alice })).body.values, { FOO: '1' }, 'the config is v2 again')
  const toV1 = await c.call('POST', '/v1/apps/shop/releases/rollback', { token: alice, body: { version: 'v1' } })
  t.match(toV1.body, { version: 5, rollbackOf: 1, config: {} })
  t.equal((await c.call('GET', '/v1/apps/shop', { token: alice })).body.release.version, 5, 'info shows the current release')
})

t.test('formation, processes, limits, maintenance, perms', async (t) => {
  const { c, alice, bob } = await world(t)
  const scaled = await c.call('POST', '/v1/apps/shop/formation', { token: bob, body: { web: 2, worker: 1 } })
  t.same(scaled.body, { formation: { web: 2, worker: 1 } })
  t.same((await c.call('POST', '/v1/apps/shop/formation', { token: alice, body: { worker: 0 } })).body, { formation: { web: 2, worker: 0 } })
  t.same((await c.call('GET', '/v1/apps/shop', { token: alice })).body.formation, { web: 2, worker: 0 })
  t.same((await c.call('GET', '/v1/apps/shop/processes', { token: alice })).body, { processes: [] })

  const limits = await c.call('POST', '/v1/apps/shop/limits', { token: alice, body: { memory: { web: '512M' }, cpu: { web: 0.5 } } })
  t.same(limits.body, { memory: { web: '512M' }, cpu: { web: 0.5 } })
  t.same((await c.call('GET', '/v1/apps/shop/limits', { token: bob })).body, limits.body)
  const unset = await c.call('POST', '/v1/apps/shop/limits/unset', { token: alice, body: { cpu: ['web'] } })
  t.same(unset.body, { memory: { web: '512M' }, cpu: {} })
  const releases = (await c.call('GET', '/v1/apps/shop/releases', { token: alice })).body.releases
  t.match(
    releases.slice(0, 2),
    [
      { version: 3, summary: /unset limits cpu web/ },
      { version: 2, summary: /set limits memory web=512M, cpu web=0.5/ },
    ],
    'each limits change is a release',
  )

  t.same((await c.call('POST', '/v1/apps/shop/maintenance', { token: bob, body: { enabled: true } })).body, { enabled: true })
  t.same((await c.call('GET', '/v1/apps/shop/maintenance', { token: alice })).body, { enabled: true })
  t.equal((await c.call('GET', '/v1/apps/shop', { token: alice })).body.maintenance, true)

  t.same((await c.call('GET', '/v1/apps/shop/perms', { token: bob })).body, { owner: 'alice', collaborators: ['bob'] })
  t.same((await c.call('DELETE', '/v1/apps/shop/perms/bob', { token: alice })).body, { owner: 'alice', collaborators: [] })
  t.equal((await c.call('GET', '/v1/apps/shop', { token: bob })).status, 404, 'unshared: bob no longer sees it')
})

t.test('domains: one app per domain, remove frees it, destroy frees them all', async (t) => {
  const { c, alice, carol } = await world(t)
  await c.call('POST', '/v1/apps', { token: carol, body: { name: 'blog' } })
  const added = await c.call('POST', '/v1/apps/shop/domains', { token: alice, body: { domain: 'shop.example.com' } })
  t.equal(added.status, 201)
  t.match(added.body.domains, [{ domain: 'shop.example.com' }])
  t.same((await c.call('GET', '/v1/apps/shop', { token: alice })).body.domains, ['shop.example.com'])
  await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/apps/blog/domains', { token: carol, body: { domain: 'shop.example.com' } })
  t.equal((await c.call('POST', '/v1/apps/shop/domains', { token: alice, body: { domain: 'shop.example.com' } })).status, 201, 'adding it again is a no-op')

  // Two apps racing for one domain: exactly one gets it.
  const race = await Promise.all([
    c.call('POST', '/v1/apps/shop/domains', { token: alice, body: { domain: 'race.example.com' } }),
    c.call('POST', '/v1/apps/blog/domains', { token: carol, body: { domain: 'race.example.com' } }),
  ])
  t.same(race.map((r) => r.status).sort(), [201, 409], 'one wins, one is refused')

  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', '/v1/apps/shop/domains/nope.example.com', { token: alice })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/apps/shop/domains', { token: carol, body: { domain: 'x.example.com' } })
  const removed = await c.call('DELETE', '/v1/apps/shop/domains/shop.example.com', { token: alice })
  t.equal(removed.status, 200)
  t.equal((await c.call('POST', '/v1/apps/blog/domains', { token: carol, body: { domain: 'shop.example.com' } })).status, 201, 'removed: free for another app')

  const winner = race[0]!.status === 201 ? { app: 'shop', token: alice } : { app: 'blog', token: carol }
  const loser = winner.app === 'shop' ? { app: 'blog', token: carol } : { app: 'shop', token: alice }
  await c.call('DELETE', `/v1/apps/${winner.app}`, { token: winner.token, body: { confirm: winner.app } })
  t.equal(
    (await c.call('POST', `/v1/apps/${loser.app}/domains`, { token: loser.token, body: { domain: 'race.example.com' } })).status,
    201,
    'destroyed: its domains are free',
  )
})
