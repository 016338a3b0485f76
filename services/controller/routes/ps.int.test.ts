/**
 * `GET /v1/apps/:app/ps` over the containers read model: runtime events appended as a publisher would,
 * answered as processes (type, number, release, state, since, port) beside the formation, to those
 * who may see the app.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { streamId } from '../../../events/index.js'
import { registerAndLogin, startTestController, type TestController } from '../testing.js'

const C = (n: number) => n.toString(16).padEnd(64, 'c')

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

async function publish(c: TestController, type: string, data: Record<string, unknown>): Promise<void> {
  await c.deps.store.append(streamId('runtime', 'shop'), [{ type, data: { app: 'shop', ...data } }], { expectedVersion: 'any', actor: 'system:publisher' })
}

t.test('ps: formation and processes, with their state', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  const ps = async (token = alice) => (await c.call('GET', '/v1/apps/shop/ps', { token })).body
  t.same(await ps(), { formation: {}, processes: [] }, 'nothing runs yet')

  await publish(c, 'ContainerStarted', { type: 'worker', release: 2, container: C(3), host: '127.0.0.1', number: 1 })
  await publish(c, 'ContainerStarted', { type: 'web', release: 2, container: C(2), host: '127.0.0.1', port: 32001, number: 2 })
  await publish(c, 'ContainerStarted', { type: 'web', release: 2, container: C(1), host: '127.0.0.1', port: 32000, number: 1 })
  const three = await until('three processes', async () => ((await ps()).processes.length === 3 ? await ps() : undefined))
  t.match(
    three.processes,
    [
      { type: 'web', number: 1, release: 2, state: 'up', host: '127.0.0.1', port: 32000, container: C(1).slice(0, 12), exitCode: null, reason: null },
      { type: 'web', number: 2, port: 32001, state: 'up' },
      { type: 'worker', number: 1, port: null, state: 'up' },
    ],
    'by type, then number; a worker has no port',
  )
  t.ok(Date.now() - Date.parse(three.processes[0].since) < 60_000, 'since: when it started')

  // Draining, then a crash of web.1 kept until its slot runs again; a stop removes it.
  await publish(c, 'ContainerStopping', { type: 'web', container: C(2) })
  await publish(c, 'ContainerCrashed', { type: 'web', container: C(1), exitCode: 137, reason: 'killed by SIGKILL (exit code 137)' })
  await publish(c, 'ContainerStopped', { type: 'worker', container: C(3) })
  const after = await until('changes', async () => {
    const b = await ps()
    return b.processes.length === 2 && b.processes[0].state === 'crashed' ? b : undefined
  })
  t.match(after.processes, [
    { type: 'web', number: 1, state: 'crashed', exitCode: 137, reason: /SIGKILL/ },
    { type: 'web', number: 2, state: 'stopping' },
  ])
  t.ok(Date.parse(after.processes[0].since) >= Date.parse(three.processes[0].since), 'since: when it crashed')
  await publish(c, 'ContainerStarted', { type: 'web', release: 3, container: C(4), host: '127.0.0.1', port: 32002, number: 1 })
  const back = await until('web.1 back', async () => {
    const b = await ps()
    return b.processes.find((p: { container: string }) => p.container === C(4).slice(0, 12)) ? b : undefined
  })
  t.match(
    back.processes,
    [
      { number: 1, release: 3, state: 'up', container: C(4).slice(0, 12) },
      { number: 2, state: 'stopping' },
    ],
    'the crash is gone once the slot runs again',
  )
  t.equal(back.processes.length, 2)

  // A crash in a slot scaled away goes with it; the formation is answered beside.
  await publish(c, 'ContainerCrashed', { type: 'web', container: C(2), exitCode: 1 })
  t.equal((await c.call('POST', '/v1/apps/shop/formation', { token: alice, body: { web: 1 } })).status, 200)
  const scaled = await until('scaled', async () => {
    const b = await ps()
    return b.processes.length === 1 ? b : undefined
  })
  t.same(scaled.formation, { web: 1 })
  t.match(scaled.processes, [{ number: 1, state: 'up' }])

  // Who may see it.
  t.equal((await c.call('GET', '/v1/apps/shop/ps', { token: bob })).status, 404, 'not to someone else')
  t.equal((await c.call('GET', '/v1/apps/shop/ps')).status, 401, 'not without a token')
  t.equal((await c.call('GET', '/v1/apps/nope/ps', { token: alice })).status, 404, 'no such app')
  t.equal((await c.call('POST', '/v1/apps/shop/perms', { token: alice, body: { username: 'bob' } })).status, 201)
  t.equal((await ps(bob)).processes.length, 1, 'a collaborator sees them')

  // Destroyed: nothing left.
  await c.deps.store.append(streamId('app', 'shop'), [{ type: 'AppDestroyed', data: { app: 'shop' } }], { expectedVersion: 'any', actor: 'system:test' })
  await until('destroyed', async () => {
    const { rows } = await c.deps.pool.query('SELECT count(*)::int AS n FROM rm_containers.containers')
    return rows[0].n === 0
  })
})
