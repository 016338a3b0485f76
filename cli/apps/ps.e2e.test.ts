/**
 * `wharf ps:list` (and its alias `ps`) as a user runs it: `node bin/wharf` (compiled: `npx tsc -p .`
 * first) against a controller of its own, with containers announced on the runtime stream as a
 * publisher would.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { streamId } from '../../events/index.js'
import { registerAndLogin, startTestController, type TestController } from '../../services/controller/testing.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'

async function publish(c: TestController, app: string, type: string, data: Record<string, unknown>): Promise<void> {
  await c.deps.store.append(streamId('runtime', app), [{ type, data: { app, ...data } }], { expectedVersion: 'any', actor: 'system:publisher' })
}

t.test('ps:list and ps through bin/wharf', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))
  await ok(t, alice.run(['apps:create', 'shop', '--no-remote']), 'apps:create')
  await ok(t, alice.run(['ps:scale', 'web=2', '-a', 'shop']), 'ps:scale')
  t.equal((await ok(t, alice.run(['ps:list', '-a', 'shop']), 'ps:list with none')).stdout, '=== formation: web=2\nNo processes running.\n')

  const web1 = 'a1'.padEnd(64, '0')
  const web2 = 'b2'.padEnd(64, '0')
  const worker = 'c3'.padEnd(64, '0')
  await publish(c, 'shop', 'ContainerStarted', { type: 'web', release: 3, container: web1, host: '127.0.0.1', port: 32100, number: 1 })
  await publish(c, 'shop', 'ContainerStarted', { type: 'web', release: 3, container: web2, host: '127.0.0.1', port: 32101, number: 2 })
  await publish(c, 'shop', 'ContainerStarted', { type: 'worker', release: 3, container: worker, host: '127.0.0.1', number: 1 })
  await publish(c, 'shop', 'ContainerStopping', { type: 'web', container: web2 })
  await publish(c, 'shop', 'ContainerCrashed', { type: 'worker', container: worker, exitCode: 1, reason: 'exited with code 1' })
  const end = Date.now() + 10_000
  let json
  for (;;) {
    json = JSON.parse((await ok(t, alice.run(['ps:list', '-a', 'shop', '--json']), 'ps:list --json')).stdout)
    if (json.processes.length === 3 && json.processes[2].state === 'crashed') break
    if (Date.now() > end) throw new Error('the processes did not show')
    await sleep(100)
  }
  t.match(json, {
    formation: { web: 2 },
    processes: [
      { type: 'web', number: 1, release: 3, state: 'up', port: 32100, container: web1.slice(0, 12), since: String },
      { type: 'web', number: 2, state: 'stopping', port: 32101 },
      { type: 'worker', number: 1, state: 'crashed', port: null, exitCode: 1, reason: 'exited with code 1' },
    ],
  })

  const table = (await ok(t, alice.run(['ps', '-a', 'shop']), 'ps')).stdout
  t.match(table, /^=== formation: web=2\nPROCESS\s+RELEASE\s+STATE\s+SINCE\s+PORT\s+CONTAINER\n/)
  t.match(table, new RegExp(`\\nweb\\.1\\s+v3\\s+up\\s+\\d+s ago\\s+32100\\s+${web1.slice(0, 12)}\\n`))
  t.match(table, new RegExp(`\\nweb\\.2\\s+v3\\s+stopping\\s+\\d+s ago\\s+32101\\s+${web2.slice(0, 12)}\\n`))
  t.match(table, new RegExp(`\\nworker\\.1\\s+v3\\s+crashed \\(exit 1\\)\\s+\\d+s ago\\s+${worker.slice(0, 12)}\\n$`), 'no port for a worker')
  // The two listings are a second or so apart: compare them with the ages left out.
  const ageless = (text: string) => text.replace(/\d+s ago/g, 'Ns ago')
  t.equal(ageless((await alice.run(['ps:list', '-a', 'shop'])).stdout), ageless(table), 'ps is ps:list')

  await fails(t, bob.run(['ps', '-a', 'shop']), 'WHARF_NOT_FOUND', "someone else's app")
  await fails(t, alice.run(['ps', '-a', 'nope']), 'WHARF_NOT_FOUND', 'no such app')
  await fails(t, alice.run(['ps']), 'WHARF_INVALID', 'no app outside a checkout')
})

t.test('ps:scale --constraint keeps the placement as the app setting of the types scaled; a bad one changes nothing', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  await ok(t, alice.run(['apps:create', 'zoned', '--no-remote']), 'apps:create')
  const out = await ok(
    t,
    alice.run(['ps:scale', 'web=2', 'worker=1', '--constraint', 'node.labels.zone==a', '--constraint', 'node.role!=manager', '-a', 'zoned']),
    'ps:scale --constraint',
  )
  t.match(out.stdout, /Placement: WHARF_PLACEMENT_WEB=node\.labels\.zone==a;node\.role!=manager WHARF_PLACEMENT_WORKER=/)
  t.match(out.stdout, /Scaled: web=2 worker=1/)
  const config = JSON.parse((await ok(t, alice.run(['config:list', '-a', 'zoned', '--json']), 'config')).stdout)
  t.match(config.values, { WHARF_PLACEMENT_WEB: 'node.labels.zone==a;node.role!=manager', WHARF_PLACEMENT_WORKER: 'node.labels.zone==a;node.role!=manager' })

  await fails(t, alice.run(['ps:scale', 'web=5', '--constraint', 'zone==a', '-a', 'zoned']), 'WHARF_INVALID', 'not a placement constraint')
  const ps = JSON.parse((await ok(t, alice.run(['ps:list', '-a', 'zoned', '--json']), 'ps:list')).stdout)
  t.same(ps.formation, { web: 2, worker: 1 }, 'the formation is unchanged')
  const after = JSON.parse((await ok(t, alice.run(['config:list', '-a', 'zoned', '--json']), 'config')).stdout)
  t.equal(after.values.WHARF_PLACEMENT_WEB, 'node.labels.zone==a;node.role!=manager', 'the placement is unchanged')
})
