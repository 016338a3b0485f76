/**
 * `GET /v1/apps/:app/trace` against the real event store and read models: a `builds:create` through
 * the API (the real engine and registry), then the deploy, its containers and the router's record
 * appended as the scheduler, the publisher and the router write them; the trace follows each step,
 * by release, build id and correlation id, redacted, and only for those who may read the app.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROUTER_STREAM } from '../../../domain/platform/events.js'
import { streamId } from '../../../events/index.js'
import { waitFor } from '../../../projections/index.js'
import { uniqueName } from '../../../test/harness.js'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../../builder/testing.js'
import { registerAndLogin, startEngineController } from '../testing.js'

const docker = testDocker()

t.test('the trace of builds:create and config:set follows the deploy to the router; refusals', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-trace-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  const app = `tr${uniqueName('t')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })).status, 201)
  const trace = async (ref: string, token = alice) => c.call('GET', `/v1/apps/${app}/trace?ref=${encodeURIComponent(ref)}`, { token })

  // Before any build: a config change deploys nothing, and says so.
  const early = await c.call('POST', `/v1/apps/${app}/config`, {
    token: alice,
    body: { values: { EARLY: '1' } },
    headers: { 'x-request-id': 'early-change-1' },
  })
  t.equal(early.status, 200)
  t.match((await trace('early-change-1')).body, { status: 'no-deploy', release: 2, steps: [{ type: 'ConfigSet' }, { type: 'ReleaseCreated' }] })

  const source = await buildTestImage(t, docker, `FROM busybox\nEXPOSE 8080\nRUN echo ${Date.now()} > /stamp\nCMD ["httpd", "-f", "-p", "8080"]\n`)
  const id12 = (await docker.getImage(source).inspect()).Id.replace(/^sha256:/, '').slice(0, 12)
  t.teardown(() => removeImage(docker, `${testRegistry()}/${app}:image-${id12}`))
  const built = await c.call('POST', `/v1/apps/${app}/builds`, { token: alice, body: { image: source }, headers: { 'x-request-id': 'create-1' } })
  t.equal(built.status, 201, JSON.stringify(built.body))
  const v = built.body.release as number
  let res = await trace('create-1')
  t.equal(res.status, 200, JSON.stringify(res.body))
  t.match(res.body, { app, correlationId: 'create-1', release: v, build: built.body.build, status: 'pending', reason: /scheduler/ })
  t.same(
    res.body.steps.map((s: { type: string }) => s.type),
    ['BuildStarted', 'BuildSucceeded', 'ReleaseCreated', 'FormationScaled'],
    'the first build scales web to 1 in the same command',
  )
  t.equal(res.body.steps[2].data.config.EARLY, '[redacted]', 'config values never leave, as in the events API')

  // The scheduler, the publisher and the router as they append.
  const runtime = streamId('runtime', app)
  const append = (stream: string, type: string, data: Record<string, unknown>, correlationId: string) =>
    c.deps.store.append(stream, [{ type, data: { app, ...data } }], { expectedVersion: 'any', actor: 'system:test', correlationId })
  await append(runtime, 'DeployStarted', { release: v, formation: { web: 2 } }, 'create-1')
  const c1 = 'c1'.padEnd(64, '0')
  const c2 = 'c2'.padEnd(64, '0')
  await append(runtime, 'ContainerStarted', { type: 'web', release: v, container: c1, host: '127.0.0.1', port: 31001, number: 1 }, c1)
  res = await trace('create-1')
  t.match(res.body, { status: 'deploying', reason: /deploy to complete/, progress: [{ type: 'web', started: 1, wanted: 2 }] })
  await append(runtime, 'ContainerStarted', { type: 'web', release: v, container: c2, host: '127.0.0.1', port: 31002, number: 2 }, c2)
  await append(runtime, 'DeployCompleted', { release: v }, 'create-1')
  await append(ROUTER_STREAM, 'RouteServed', { servers: [{ container: c1, release: v, host: '127.0.0.1', port: 31001 }] }, 'r-1')
  t.match((await trace('create-1')).body, { status: 'deploying', reason: /router/ }, 'one of two served')
  await append(
    ROUTER_STREAM,
    'RouteServed',
    {
      servers: [
        { container: c1, release: v, host: '127.0.0.1', port: 31001 },
        { container: c2, release: v, host: '127.0.0.1', port: 31002 },
      ],
    },
    'r-2',
  )
  res = await trace('create-1')
  t.match(res.body, { status: 'served', progress: [{ type: 'web', started: 2, wanted: 2 }] })
  const types = res.body.steps.map((s: { type: string }) => s.type)
  t.same(types, [
    'BuildStarted',
    'BuildSucceeded',
    'ReleaseCreated',
    'FormationScaled',
    'DeployStarted',
    'ContainerStarted',
    'ContainerStarted',
    'DeployCompleted',
    'RouteServed',
  ])
  const offsets = res.body.steps.map((s: { offsetMs: number }) => s.offsetMs)
  t.same(
    offsets,
    [...offsets].sort((a, b) => a - b),
    'offsets grow',
  )
  t.equal(
    res.body.steps.reduce((n: number, s: { stepMs: number }) => n + s.stepMs, 0),
    res.body.totalMs,
    'the steps add up to the total',
  )
  t.match(res.body.steps.at(-1), { type: 'RouteServed', detail: `the router serves 2 containers of v${v}` })
  t.same((await trace(`v${v}`)).body.steps, res.body.steps, 'by release')
  t.same((await trace(built.body.build)).body.steps, res.body.steps, 'by build id')

  // config:set with the app running: its own chain; the deploy fails.
  await c.call('POST', `/v1/apps/${app}/config`, { token: alice, body: { values: { HEALTHCHECK_URL: '/nope' } }, headers: { 'x-request-id': 'set-2' } })
  await append(runtime, 'DeployStarted', { release: v + 1, formation: { web: 2 } }, 'set-2')
  await append(runtime, 'DeployFailed', { release: v + 1, reason: 'web: never healthy', rolledBackTo: v }, 'set-2')
  t.match((await trace('set-2')).body, { status: 'failed', release: v + 1, reason: `web: never healthy (v${v} keeps running)` })
  await waitFor(c.deps.pool, await c.deps.store.lastSeq(), { projections: ['eventlog'] })
  t.match((await trace(`v${v}`)).body, { status: 'served' }, 'an older release keeps its trace')

  // Refusals: an unknown ref, a bad one, someone who may not read the app.
  t.match((await trace('v999')).body, { code: 'WHARF_NOT_FOUND', message: /no release, build or correlation id v999/ })
  t.equal((await trace('v999')).status, 404)
  t.match((await trace('nothing-like-it')).body, { code: 'WHARF_NOT_FOUND' })
  const bad = await trace('../../etc')
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'WHARF_INVALID')
  const stranger = await trace(`v${v}`, bob)
  t.equal(stranger.status, 404)
  t.equal(stranger.body.code, 'WHARF_NOT_FOUND', 'a user who cannot read the app sees nothing of it')
  const other = await c.call('GET', `/v1/apps/nope${Date.now()}/trace?ref=v1`, { token: alice })
  t.equal(other.body.code, 'WHARF_NOT_FOUND')

  // The name reused after apps:destroy is a new app: no trace of the earlier one, by any ref.
  t.equal((await c.call('DELETE', `/v1/apps/${app}`, { token: alice, body: { confirm: app } })).status, 200)
  t.equal((await c.call('POST', '/v1/apps', { token: bob, body: { name: app } })).status, 201)
  for (const ref of [`v${v}`, 'create-1', built.body.build, 'v1']) {
    const res = await trace(ref, bob)
    t.equal(res.body.code, ref === 'v1' ? undefined : 'WHARF_NOT_FOUND', `bob's ${app}: ${ref} ${ref === 'v1' ? 'is his own v1' : 'is of the earlier app'}`)
  }
  const first = (await trace('v1', bob)).body
  t.equal(first.status, 'no-deploy', 'nothing to deploy yet')
  t.equal(first.steps[0].type, 'AppCreated', "v1 is bob's app creation")
})
