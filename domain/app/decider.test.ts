import t, { type Test } from 'tap'
import { fold } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import { wharfCatalogue } from '../catalogue.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { appDecider, configHash, type Actor, type AppCommand } from './decider.js'

const alice: Actor = { kind: 'user', username: 'alice', admin: false }
const bob: Actor = { kind: 'user', username: 'bob', admin: false }
const carol: Actor = { kind: 'user', username: 'carol', admin: false }
const root: Actor = { kind: 'user', username: 'root', admin: true }
const catalogue = wharfCatalogue()

let seq = 0
function recorded(events: NewEvent[]): RecordedEvent[] {
  return events.map((e) => ({
    id: `id-${++seq}`,
    type: e.type,
    version: 1,
    stream: 'app.shop',
    occurredAt: new Date().toISOString(),
    actor: 'user:alice',
    causationId: null,
    correlationId: 'c',
    data: e.data,
    seq,
  }))
}

/** Given these events, when this command: the new events (each valid for the catalogue). */
function when(given: NewEvent[], command: AppCommand): NewEvent[] {
  const state = fold(appDecider, recorded(given))
  const out = appDecider.decide(command, state)
  for (const e of out) catalogue.validate({ type: e.type, version: 1, stream: 'app.shop', data: e.data })
  return out
}

/** Replays given + the decisions of each command in turn (as the store would). */
function history(...commands: AppCommand[]): NewEvent[] {
  const events: NewEvent[] = []
  for (const c of commands) events.push(...when(events, c))
  return events
}

function throwsCode(t: Test, fn: () => unknown, code: string) {
  try {
    fn()
    t.fail(`expected ${code}`)
  } catch (err) {
    t.ok(err instanceof WharfError, 'a WharfError')
    t.equal((err as WharfError).code, code)
  }
}

const created = () => history({ type: 'CreateApp', by: alice, name: 'shop' })

t.test('create: AppCreated and release v1 without an image', (t) => {
  const out = when([], { type: 'CreateApp', by: alice, name: 'shop' })
  t.same(
    out.map((e) => e.type),
    ['AppCreated', 'ReleaseCreated'],
  )
  t.same(out[0]!.data, { app: 'shop', owner: 'alice' })
  t.match(out[1]!.data, { app: 'shop', version: 1, config: {}, by: 'alice' })
  t.notOk('image' in (out[1]!.data as object))
  throwsCode(t, () => when(out, { type: 'CreateApp', by: bob, name: 'shop' }), 'WHARF_EXISTS')
  t.end()
})

t.test("create: the platform's own names are refused with WHARF_RESERVED, nothing decided", (t) => {
  for (const name of ['wharf', 'www', 'api', 'admin', 'registry', 'git', 'wharf-router-probe', 'wharf-anything']) {
    throwsCode(t, () => when([], { type: 'CreateApp', by: alice, name }), 'WHARF_RESERVED')
  }
  t.same(when([], { type: 'CreateApp', by: alice, name: 'wharfish' })[0]!.type, 'AppCreated', 'a name that only starts with wharf is free')
  t.end()
})

t.test('config set and unset make releases; unchanged and unknown keys decide nothing', (t) => {
  const given = created()
  const set = when(given, { type: 'SetConfig', by: alice, values: { FOO: '1', BAR: '2' } })
  t.same(
    set.map((e) => e.type),
    ['ConfigSet', 'ReleaseCreated'],
  )
  t.match(set[1]!.data, { version: 2, config: { FOO: '1', BAR: '2' }, summary: 'alice set FOO, BAR' })
  t.same(when([...given, ...set], { type: 'SetConfig', by: alice, values: { FOO: '1' } }), [], 'same value: nothing')
  const changed = when([...given, ...set], { type: 'SetConfig', by: alice, values: { FOO: '1', BAR: '3' } })
  t.same(changed[0]!.data, { app: 'shop', values: { BAR: '3' } }, 'only the changed key')
  const unset = when([...given, ...set], { type: 'UnsetConfig', by: alice, keys: ['FOO', 'NOPE'] })
  t.same(unset[0]!.data, { app: 'shop', keys: ['FOO'] })
  t.match(unset[1]!.data, { version: 3, config: { BAR: '2' } })
  t.same(when([...given, ...set], { type: 'UnsetConfig', by: alice, keys: ['NOPE'] }), [], 'unknown key only: nothing')
  throwsCode(t, () => when(given, { type: 'SetConfig', by: alice, values: { BIG: 'x'.repeat(300 * 1024) } }), 'WHARF_TOO_LARGE')
  // Placement settings are checked before anything is recorded.
  throwsCode(t, () => when(given, { type: 'SetConfig', by: alice, values: { A: '1', WHARF_PLACEMENT_WEB: 'zone==a' } }), 'WHARF_INVALID')
  t.match(when(given, { type: 'SetConfig', by: alice, values: { WHARF_PLACEMENT_WEB: 'node.labels.zone==a' } })[0]!.data, {
    values: { WHARF_PLACEMENT_WEB: 'node.labels.zone==a' },
  })
  t.end()
})

t.test('access: other users get not found, collaborators may use but not manage, admins may all', (t) => {
  const given = history({ type: 'CreateApp', by: alice, name: 'shop' }, { type: 'AddCollaborator', by: alice, username: 'bob' })
  throwsCode(t, () => when(given, { type: 'SetConfig', by: carol, values: { A: '1' } }), 'WHARF_NOT_FOUND')
  throwsCode(t, () => when(given, { type: 'DestroyApp', by: carol, confirm: 'shop' }), 'WHARF_NOT_FOUND')
  t.equal(when(given, { type: 'SetConfig', by: bob, values: { A: '1' } }).length, 2, 'collaborator sets config')
  throwsCode(t, () => when(given, { type: 'DestroyApp', by: bob, confirm: 'shop' }), 'WHARF_FORBIDDEN')
  throwsCode(t, () => when(given, { type: 'AddCollaborator', by: bob, username: 'carol' }), 'WHARF_FORBIDDEN')
  throwsCode(t, () => when(given, { type: 'TransferApp', by: bob, to: 'bob' }), 'WHARF_FORBIDDEN')
  t.same(
    when(given, { type: 'DestroyApp', by: root, confirm: 'shop' }).map((e) => e.type),
    ['AppDestroyed'],
    'admin destroys',
  )
  throwsCode(t, () => when(given, { type: 'DestroyApp', by: alice, confirm: 'shoe' }), 'WHARF_INVALID')
  throwsCode(t, () => when([], { type: 'SetConfig', by: alice, values: { A: '1' } }), 'WHARF_NOT_FOUND')
  throwsCode(t, () => when(given, { type: 'AddCollaborator', by: alice, username: 'bob' }), 'WHARF_EXISTS')
  throwsCode(t, () => when(given, { type: 'RemoveCollaborator', by: alice, username: 'carol' }), 'WHARF_NOT_FOUND')
  t.end()
})

t.test('destroyed app: gone for everyone, and its name may be created again from v1', (t) => {
  const given = history(
    { type: 'CreateApp', by: alice, name: 'shop' },
    { type: 'SetConfig', by: alice, values: { A: '1' } },
    { type: 'DestroyApp', by: alice, confirm: 'shop' },
  )
  throwsCode(t, () => when(given, { type: 'SetConfig', by: alice, values: { A: '1' } }), 'WHARF_NOT_FOUND')
  const again = when(given, { type: 'CreateApp', by: bob, name: 'shop' })
  t.match(again[1]!.data, { version: 1, config: {} })
  t.end()
})

t.test('transfer: the new owner owns it; the old one may no longer see it', (t) => {
  const given = history({ type: 'CreateApp', by: alice, name: 'shop' }, { type: 'TransferApp', by: alice, to: 'bob' })
  t.same(given[2]!.data, { app: 'shop', from: 'alice', to: 'bob' })
  throwsCode(t, () => when(given, { type: 'SetConfig', by: alice, values: { A: '1' } }), 'WHARF_NOT_FOUND')
  t.equal(when(given, { type: 'SetConfig', by: bob, values: { A: '1' } }).length, 2)
  t.end()
})

t.test('rollback: a new release with the old image and config; default is the previous one', (t) => {
  const sys: Actor = { kind: 'system' }
  const build = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  const given = history(
    { type: 'CreateApp', by: alice, name: 'shop' }, // v1
    { type: 'ReleaseBuild', by: sys, build, image: 'reg/shop:git-aaaaaaa', procfile: { web: 'node server.js' }, port: 5000 }, // v2
    { type: 'SetConfig', by: alice, values: { A: '1' } }, // v3
    { type: 'SetConfig', by: alice, values: { A: '2', B: '1' } }, // v4
  )
  const back = when(given, { type: 'Rollback', by: alice })
  const release = back.find((e) => e.type === 'ReleaseCreated')!.data
  t.match(release, { version: 5, image: 'reg/shop:git-aaaaaaa', config: { A: '1' }, rollbackOf: 3, summary: 'alice rolled back to v3' })
  t.same(
    back.map((e) => e.type),
    ['ReleaseCreated'],
    'one event: the release snapshot is the new config',
  )
  const toV2 = when(given, { type: 'Rollback', by: alice, version: 2 })
  t.match(toV2.at(-1)!.data, { version: 5, image: 'reg/shop:git-aaaaaaa', config: {}, rollbackOf: 2 })
  const state = fold(appDecider, recorded([...given, ...toV2]))
  t.same(state.config, {}, 'the state after rollback has v2 config')
  throwsCode(t, () => when(given, { type: 'Rollback', by: alice, version: 9 }), 'WHARF_NOT_FOUND')
  throwsCode(t, () => when(given, { type: 'Rollback', by: alice, version: 4 }), 'WHARF_INVALID')
  throwsCode(t, () => when(created(), { type: 'Rollback', by: alice }), 'WHARF_INVALID')
  // v1, from before the first build, has no image; nor has the release before a first build.
  throwsCode(t, () => when(given, { type: 'Rollback', by: alice, version: 1 }), 'WHARF_INVALID')
  const firstBuild = history(
    { type: 'CreateApp', by: alice, name: 'shop' },
    { type: 'ReleaseBuild', by: sys, build, image: 'reg/shop:git-aaaaaaa', procfile: {}, port: 5000 },
  )
  throwsCode(t, () => when(firstBuild, { type: 'Rollback', by: alice }), 'WHARF_INVALID')
  const unbuilt = history({ type: 'CreateApp', by: alice, name: 'shop' }, { type: 'SetConfig', by: alice, values: { A: '1' } })
  t.match(when(unbuilt, { type: 'Rollback', by: alice }).at(-1)!.data, { version: 3, config: {}, rollbackOf: 1 }, 'before any build, config rolls back')
  t.end()
})

t.test('release manager: a build makes a release once, and the first scales web to 1', (t) => {
  const sys: Actor = { kind: 'system' }
  const build = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  const cmd: AppCommand = { type: 'ReleaseBuild', by: sys, build, image: 'reg/shop:git-aaaaaaa', digest: 'sha256:abc', procfile: {}, port: 5000 }
  const given = history({ type: 'CreateApp', by: alice, name: 'shop' }, { type: 'SetConfig', by: alice, values: { A: '1' } })
  const out = when(given, cmd)
  t.same(
    out.map((e) => e.type),
    ['ReleaseCreated', 'FormationScaled'],
  )
  t.match(out[0]!.data, { version: 3, image: 'reg/shop:git-aaaaaaa', digest: 'sha256:abc', config: { A: '1' }, build, by: 'system', port: 5000 })
  t.same(when([...given, ...out], cmd), [], 'the same build again: nothing')
  const later = when([...given, ...out], { ...cmd, build: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c' })
  t.same(
    later.map((e) => e.type),
    ['ReleaseCreated'],
    'formation kept',
  )
  t.end()
})

t.test('scale: Procfile types once built, bounds by schema, no-op when unchanged', (t) => {
  const sys: Actor = { kind: 'system' }
  const unbuilt = created()
  t.same(when(unbuilt, { type: 'Scale', by: alice, formation: { worker: 2 } })[0]!.data, { app: 'shop', formation: { worker: 2 } }, 'before a build: any type')
  const built = history(
    { type: 'CreateApp', by: alice, name: 'shop' },
    { type: 'ReleaseBuild', by: sys, build: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', image: 'i', procfile: { web: 'a', worker: 'b' }, port: 5000 },
  )
  throwsCode(t, () => when(built, { type: 'Scale', by: alice, formation: { clock: 1 } }), 'WHARF_INVALID')
  t.same(when(built, { type: 'Scale', by: alice, formation: { web: 1 } }), [], 'web is 1 already')
  t.same(when(built, { type: 'Scale', by: alice, formation: { web: 3, worker: 0 } })[0]!.data, { app: 'shop', formation: { web: 3, worker: 0 } })
  t.same(when(built, { type: 'Scale', by: alice, formation: { web: 100 } })[0]!.data, { app: 'shop', formation: { web: 100 } }, 'the maximum is allowed')
  throwsCode(t, () => when(built, { type: 'Scale', by: alice, formation: { web: 101 } }), 'WHARF_INVALID')
  throwsCode(t, () => when(unbuilt, { type: 'Scale', by: alice, formation: { worker: -1 } }), 'WHARF_INVALID')
  t.throws(() => when(built, { type: 'Scale', by: alice, formation: { web: 101 } }), /0 to 100 processes; not web=101/, 'the message names the limit')
  t.end()
})

t.test('limits: set and unset make releases', (t) => {
  const given = created()
  const set = when(given, { type: 'SetLimits', by: alice, memory: { web: '512M' }, cpu: { web: 0.5 } })
  t.same(
    set.map((e) => e.type),
    ['LimitsSet', 'ReleaseCreated'],
  )
  t.match(set[1]!.data, { version: 2, limits: { memory: { web: '512M' }, cpu: { web: 0.5 } } })
  const unset = when([...given, ...set], { type: 'UnsetLimits', by: alice, memory: ['web'], cpu: [] })
  t.match(unset[1]!.data, { version: 3, limits: { memory: {}, cpu: { web: 0.5 } } })
  t.same(when([...given, ...set], { type: 'UnsetLimits', by: alice, memory: ['worker'], cpu: [] }), [])
  t.end()
})

t.test('domains and maintenance', (t) => {
  const given = history({ type: 'CreateApp', by: alice, name: 'shop' }, { type: 'AddDomain', by: alice, domain: 'shop.example.com' })
  t.same(when(given, { type: 'AddDomain', by: alice, domain: 'shop.example.com' }), [], 'already there')
  throwsCode(t, () => when(given, { type: 'RemoveDomain', by: alice, domain: 'other.example.com' }), 'WHARF_NOT_FOUND')
  t.same(when(given, { type: 'RemoveDomain', by: alice, domain: 'shop.example.com' })[0]!.type, 'DomainRemoved')
  t.same(when(given, { type: 'SetMaintenance', by: alice, enabled: true })[0]!.data, { app: 'shop', enabled: true })
  t.same(when(given, { type: 'SetMaintenance', by: alice, enabled: false }), [])
  t.end()
})

t.test('config hash is stable and order-free', (t) => {
  t.equal(configHash({ A: '1', B: '2' }), configHash({ B: '2', A: '1' }))
  t.not(configHash({ A: '1' }), configHash({ A: '2' }))
  t.end()
})

t.test('a change whose release was lost (partial append) is released by the next command', (t) => {
  const given = created()
  const set = when(given, { type: 'SetConfig', by: alice, values: { A: '1' } })
  const partial = [...given, set[0]!] // ConfigSet written, its ReleaseCreated lost to a concurrent writer
  const next = when(partial, { type: 'SetConfig', by: alice, values: { B: '2' } })
  t.same(
    next.map((e) => e.type),
    ['ReleaseCreated', 'ConfigSet', 'ReleaseCreated'],
  )
  t.match(next[0]!.data, { version: 2, config: { A: '1' }, summary: 'alice set A' })
  t.match(next[2]!.data, { version: 3, config: { A: '1', B: '2' } })
  const retry = when(partial, { type: 'SetConfig', by: alice, values: { A: '1' } })
  t.same(
    retry.map((e) => e.type),
    ['ReleaseCreated'],
    "the writer's own retry completes its release",
  )
  throwsCode(t, () => when(partial, { type: 'SetConfig', by: carol, values: { C: '1' } }), 'WHARF_NOT_FOUND')
  t.end()
})

t.test('rollback brings back limits too; a build without a Procfile scales only web', (t) => {
  const sys: Actor = { kind: 'system' }
  const given = history(
    { type: 'CreateApp', by: alice, name: 'shop' }, // v1
    { type: 'ReleaseBuild', by: sys, build: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', image: 'i', procfile: {}, port: 5000, pushedBy: 'bob' }, // v2
    { type: 'SetLimits', by: alice, memory: { web: '1G' }, cpu: {} }, // v3
  )
  const state = fold(appDecider, recorded(given))
  t.match(state.releases[1], { version: 2, image: 'i' })
  const back = when(given, { type: 'Rollback', by: alice })
  t.match(back[0]!.data, { version: 4, limits: { memory: {}, cpu: {} }, rollbackOf: 2 })
  t.same(fold(appDecider, recorded([...given, ...back])).limits, { memory: {}, cpu: {} })
  throwsCode(t, () => when(given, { type: 'Scale', by: alice, formation: { worker: 1 } }), 'WHARF_INVALID')
  t.same(when(given, { type: 'Scale', by: alice, formation: { web: 2 } })[0]!.data, { app: 'shop', formation: { web: 2 } })
  t.end()
})

t.test('a pushed build is released in the name of the pusher', (t) => {
  const out = when(created(), {
    type: 'ReleaseBuild',
    by: { kind: 'system' },
    build: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    image: 'reg/shop:git-1',
    procfile: {},
    port: 5000,
    pushedBy: 'bob',
  })
  t.match(out[0]!.data, { by: 'bob', summary: 'bob deployed reg/shop:git-1' })
  t.end()
})

t.test('restart: all types or one that the formation has; strangers cannot', (t) => {
  const given = [...created(), ...when(created(), { type: 'Scale', by: alice, formation: { web: 2 } })]
  t.same(when(given, { type: 'RequestRestart', by: alice }), [{ type: 'RestartRequested', data: { app: 'shop' } }])
  t.same(when(given, { type: 'RequestRestart', by: root, processType: 'web' }), [{ type: 'RestartRequested', data: { app: 'shop', type: 'web' } }])
  throwsCode(t, () => when(given, { type: 'RequestRestart', by: alice, processType: 'worker' }), 'WHARF_INVALID')
  throwsCode(t, () => when(given, { type: 'RequestRestart', by: carol }), 'WHARF_NOT_FOUND')
  throwsCode(t, () => when([], { type: 'RequestRestart', by: alice }), 'WHARF_NOT_FOUND')
  t.end()
})

const pair = (sans: string[], fp: string, notAfter = '2099-01-01T00:00:00.000Z') => ({
  commonName: sans[0] ?? '',
  sans,
  notBefore: '2020-01-01T00:00:00.000Z',
  notAfter,
  fingerprint: Array.from({ length: 32 }, () => fp).join(':'),
  certificate: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n',
  privateKey: '-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n',
})
const NOW = '2030-01-01T00:00:00.000Z'

t.test('certs: add names it from its host, attach needs a domain of the app it covers, remove detaches', (t) => {
  const given = history(
    { type: 'CreateApp', by: alice, name: 'shop' },
    { type: 'AddDomain', by: alice, domain: 'shop.example.com' },
    { type: 'AddDomain', by: alice, domain: 'a.b.example.com' },
    { type: 'AddDomain', by: alice, domain: 'other.example.org' },
  )
  const added = when(given, { type: 'AddCert', by: alice, cert: pair(['*.example.com', 'example.com'], 'AA') })
  t.match(added, [{ type: 'CertAdded', data: { app: 'shop', name: 'wildcard-example-com', sans: ['*.example.com', 'example.com'] } }])
  const withCert = [...given, ...added]
  t.same(when(withCert, { type: 'AddCert', by: alice, cert: pair(['*.example.com'], 'AA') }), [], 'the same certificate again: nothing')
  throwsCode(t, () => when(withCert, { type: 'AddCert', by: alice, name: 'again', cert: pair(['*.example.com'], 'AA') }), 'WHARF_EXISTS')
  throwsCode(t, () => when(withCert, { type: 'AddCert', by: alice, name: 'wildcard-example-com', cert: pair(['x.example.com'], 'BB') }), 'WHARF_EXISTS')
  t.match(
    when(withCert, { type: 'AddCert', by: alice, cert: pair(['*.example.com'], 'BB') }),
    [{ data: { name: 'wildcard-example-com-2' } }],
    'a free default name',
  )
  throwsCode(t, () => when(withCert, { type: 'AddCert', by: carol, cert: pair(['x.example.com'], 'CC') }), 'WHARF_NOT_FOUND')

  const attach = (domain: string, name = 'wildcard-example-com', by = alice) => when(withCert, { type: 'AttachCert', by, name, domain, now: NOW })
  t.same(attach('shop.example.com'), [{ type: 'CertAttached', data: { app: 'shop', name: 'wildcard-example-com', domain: 'shop.example.com' } }])
  throwsCode(t, () => attach('a.b.example.com'), 'WHARF_INVALID')
  throwsCode(t, () => attach('other.example.org'), 'WHARF_INVALID')
  throwsCode(t, () => attach('x.example.com'), 'WHARF_INVALID')
  throwsCode(t, () => attach('shop.example.com', 'nope'), 'WHARF_NOT_FOUND')
  throwsCode(t, () => attach('shop.example.com', 'wildcard-example-com', carol), 'WHARF_NOT_FOUND')
  try {
    attach('x.example.com')
  } catch (err) {
    t.match((err as Error).message, 'x.example.com is not a domain of shop (add it first: wharf domains:add x.example.com)')
  }
  try {
    attach('a.b.example.com')
  } catch (err) {
    t.equal((err as Error).message, 'the certificate wildcard-example-com is not valid for a.b.example.com (it is for *.example.com, example.com)')
  }
  const expired = [...given, ...when(given, { type: 'AddCert', by: alice, name: 'old', cert: pair(['shop.example.com'], 'DD', '2025-01-01T00:00:00.000Z') })]
  throwsCode(t, () => when(expired, { type: 'AttachCert', by: alice, name: 'old', domain: 'shop.example.com', now: NOW }), 'WHARF_INVALID')

  const attached = [...withCert, ...attach('shop.example.com')]
  t.same(when(attached, { type: 'AttachCert', by: alice, name: 'wildcard-example-com', domain: 'shop.example.com', now: NOW }), [], 'attached already')
  t.same(when(attached, { type: 'DetachCert', by: alice, name: 'wildcard-example-com', domain: 'shop.example.com' })[0]!.type, 'CertDetached')
  throwsCode(t, () => when(attached, { type: 'DetachCert', by: alice, name: 'wildcard-example-com', domain: 'other.example.org' }), 'WHARF_NOT_FOUND')
  t.same(when(attached, { type: 'RemoveCert', by: alice, name: 'wildcard-example-com' }), [
    { type: 'CertRemoved', data: { app: 'shop', name: 'wildcard-example-com' } },
  ])
  throwsCode(t, () => when(attached, { type: 'RemoveCert', by: alice, name: 'nope' }), 'WHARF_NOT_FOUND')

  const removed = [...attached, ...when(attached, { type: 'RemoveCert', by: alice, name: 'wildcard-example-com' })]
  const s = fold(appDecider, recorded(removed))
  t.same([s.certs, s.tls], [{}, {}], 'removed: gone, and detached')
  const domainGone = [...attached, ...when(attached, { type: 'RemoveDomain', by: alice, domain: 'shop.example.com' })]
  t.same(fold(appDecider, recorded(domainGone)).tls, {}, 'a removed domain is detached')
  t.ok('wildcard-example-com' in fold(appDecider, recorded(domainGone)).certs, '... and the certificate stays')
  t.end()
})

t.test('drains: add checks the URL and refuses doubles and an 11th; remove by id or URL; access', (t) => {
  const given = created()
  const [added] = when(given, { type: 'AddDrain', by: alice, url: ' syslog://logs.example.com:514 ' })
  t.match(added, { type: 'DrainAdded', data: { app: 'shop', id: /^d\.[0-9a-f]{12}$/, url: 'syslog://logs.example.com:514' } })
  const withDrain = [...given, added!]
  throwsCode(t, () => when(withDrain, { type: 'AddDrain', by: alice, url: 'syslog://logs.example.com:514' }), 'WHARF_EXISTS')
  throwsCode(t, () => when(given, { type: 'AddDrain', by: alice, url: 'http://logs.example.com/' }), 'WHARF_INVALID')
  throwsCode(t, () => when(given, { type: 'AddDrain', by: alice, url: 'syslog://no-port' }), 'WHARF_INVALID')
  throwsCode(t, () => when(given, { type: 'AddDrain', by: bob, url: 'syslog://logs.example.com:515' }), 'WHARF_NOT_FOUND')
  const ten = [...given]
  for (let i = 0; i < 10; i++) ten.push(...when(ten, { type: 'AddDrain', by: alice, url: `syslog://logs.example.com:${600 + i}` }))
  throwsCode(t, () => when(ten, { type: 'AddDrain', by: alice, url: 'syslog://logs.example.com:700' }), 'WHARF_INVALID')
  const id = (added!.data as { id: string }).id
  t.same(when(withDrain, { type: 'RemoveDrain', by: alice, drain: id }), [{ type: 'DrainRemoved', data: { app: 'shop', id } }], 'by id')
  t.same(
    when(withDrain, { type: 'RemoveDrain', by: alice, drain: 'syslog://logs.example.com:514' }),
    [{ type: 'DrainRemoved', data: { app: 'shop', id } }],
    'by URL',
  )
  throwsCode(t, () => when(withDrain, { type: 'RemoveDrain', by: alice, drain: 'd.000000000000' }), 'WHARF_NOT_FOUND')
  t.same(fold(appDecider, recorded([...withDrain, { type: 'DrainRemoved', data: { app: 'shop', id } }])).drains, {}, 'removed from the state')
  t.end()
})

t.test('release manager: a build pushed to an earlier app of the same name is never released into a new one', (t) => {
  const sys: Actor = { kind: 'system' }
  const build = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
  const reborn = history(
    { type: 'CreateApp', by: alice, name: 'shop' },
    { type: 'DestroyApp', by: alice, confirm: 'shop' },
    { type: 'CreateApp', by: bob, name: 'shop' },
  )
  // The build began (seq 1) before bob's AppCreated: it was alice's.
  throwsCode(
    t,
    () => when(reborn, { type: 'ReleaseBuild', by: sys, build, image: 'reg/shop:git-aaaaaaa', procfile: {}, port: 5000, pushedAt: 1 }),
    'WHARF_NOT_FOUND',
  )
  const later = when(reborn, {
    type: 'ReleaseBuild',
    by: sys,
    build,
    image: 'reg/shop:git-bbbbbbb',
    procfile: {},
    port: 5000,
    pushedAt: Number.MAX_SAFE_INTEGER,
  })
  t.equal(later[0]!.type, 'ReleaseCreated', "a build of bob's app is released")
  t.end()
})
