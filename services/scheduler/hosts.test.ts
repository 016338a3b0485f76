import t from 'tap'
import { MemoryEngine } from '../../core/engine/memory.js'
import { createLogger } from '../../core/log.js'
import { runCommand } from '../../domain/command.js'
import { wharfCatalogue } from '../../domain/index.js'
import { runtimeDecider } from '../../domain/runtime/decider.js'
import { MemoryEventStore, streamId } from '../../events/index.js'
import { LOST_EXIT_CODE, lostNodes, markLostHosts } from './hosts.js'

const log = createLogger({ level: 'silent' })

async function started(store: MemoryEventStore, app: string, container: string, host: string): Promise<void> {
  await runCommand(
    { store },
    {
      stream: streamId('runtime', app),
      decider: runtimeDecider,
      command: { type: 'Announce', announcement: { kind: 'started', container, identity: { app, type: 'web', release: 1 }, host, port: 30001 } },
      ctx: { actor: 'system:publisher', correlationId: container },
      waitFor: [],
    },
  )
}

t.test('lost nodes: down ones with an address', async (t) => {
  const base = { hostname: 'x', role: 'worker' as const, availability: 'active', labels: {}, leader: false }
  const nodes = [
    { ...base, id: 'a', state: 'ready', address: '192.168.1.11' },
    { ...base, id: 'b', state: 'down', address: '192.168.1.12' },
    { ...base, id: 'c', state: 'down', address: '' },
    { ...base, id: 'd', state: 'unknown', address: '192.168.1.14' },
  ]
  t.strictSame(
    lostNodes(nodes).map((n) => n.id),
    ['b'],
  )
})

t.test("the containers of a host Swarm marks down are announced crashed, once; the others' stay up", async (t) => {
  const store = new MemoryEventStore({ catalogue: wharfCatalogue() })
  const docker = new MemoryEngine()
  docker.addNode({ id: 'n2', address: '192.168.1.12', hostname: 'h2' })
  docker.addNode({ id: 'n3', address: '192.168.1.13', hostname: 'h3' })
  await started(store, 'shop', 'c2', '192.168.1.12')
  await started(store, 'shop', 'c3', '192.168.1.13')
  await started(store, 'blog', 'b3', '192.168.1.13')
  // What the containers read model would answer, from the streams.
  const byHost: Record<string, { container: string; app: string; type: string }[]> = {
    '192.168.1.12': [{ container: 'c2', app: 'shop', type: 'web' }],
    '192.168.1.13': [
      { container: 'c3', app: 'shop', type: 'web' },
      { container: 'b3', app: 'blog', type: 'web' },
    ],
  }
  const deps = { docker, store, pool: undefined as never, log, containersAt: async (h: string) => byHost[h] ?? [] }

  t.equal(await markLostHosts(deps), 0, 'every node ready: nothing')
  docker.setNodeState('n3', 'down')
  t.equal(await markLostHosts(deps), 2, 'the two containers of h3')
  t.equal(await markLostHosts(deps), 0, 'said once: a second pass adds nothing')

  const shop = (await store.readStream(streamId('runtime', 'shop'))).events
  const crashed = shop.filter((e) => e.type === 'ContainerCrashed')
  t.equal(crashed.length, 1)
  t.match(crashed[0], { actor: 'system:scheduler', data: { container: 'c3', exitCode: LOST_EXIT_CODE, reason: 'its host 192.168.1.13 (h3) is down' } })
  t.notOk(
    shop.some((e) => e.type === 'ContainerCrashed' && (e.data as { container: string }).container === 'c2'),
    'the container of a ready host is left alone',
  )
  t.equal((await store.readStream(streamId('runtime', 'blog'))).events.filter((e) => e.type === 'ContainerCrashed').length, 1)
})
