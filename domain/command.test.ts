/**
 * runCommand on the in-memory log: commands that wait for their stream's turn are decided together,
 * each on the state the ones before it leave, and written as one commit with each event's own context.
 */
import t from 'tap'
import { WharfError } from '../core/errors.js'
import { MemoryEventStore, streamId } from '../events/index.js'
import { appDecider, type Actor } from './app/decider.js'
import { runCommand } from './command.js'
import { wharfCatalogue } from './index.js'

const alice: Actor = { kind: 'user', username: 'alice', admin: false }
const bob: Actor = { kind: 'user', username: 'bob', admin: false }
const stream = streamId('app', 'shop')

function setup() {
  const store = new MemoryEventStore({ catalogue: wharfCatalogue() })
  const run = (command: Parameters<typeof appDecider.decide>[0], correlationId: string) =>
    runCommand(
      { store },
      { stream, decider: appDecider, command, ctx: { actor: `user:${command.by.kind === 'user' ? command.by.username : 'x'}`, correlationId }, waitFor: [] },
    )
  return { store, run }
}

t.test('concurrent commands on one stream all land, in fewer commits, each event with its own context', async (t) => {
  const { store, run } = setup()
  await run({ type: 'CreateApp', by: alice, name: 'shop' }, 'create')
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => run({ type: 'SetConfig', by: alice, values: { [`K${i}`]: String(i) } }, `set-${i}`)))
  const { events } = await store.readStream(stream)
  const sets = events.filter((e) => e.type === 'ConfigSet')
  const releases = events.filter((e) => e.type === 'ReleaseCreated')
  t.equal(sets.length, 50, 'every change is in the log')
  t.same(
    releases.map((e) => (e.data as { version: number }).version),
    Array.from({ length: 51 }, (_, i) => i + 1),
    'one release per change (and the first), numbered in order',
  )
  t.same(
    sets.map((e) => e.correlationId),
    Array.from({ length: 50 }, (_, i) => `set-${i}`),
    'each event keeps the context of its own command, in the order asked',
  )
  t.ok(new Set(sets.map((e) => e.seq)).size < 50, 'commands that waited were written together')
  const last = events.at(-1)!.seq
  for (const [i, r] of results.entries()) {
    t.ok(r.version >= sets[i]!.seq && r.version <= last, 'each answer names a version that includes its events')
    t.equal(r.events.length, 2)
  }
})

t.test('a command the decider refuses fails alone; the others of its group land', async (t) => {
  const { store, run } = setup()
  await run({ type: 'CreateApp', by: alice, name: 'shop' }, 'create')
  const outcomes = await Promise.allSettled([
    run({ type: 'SetConfig', by: alice, values: { A: '1' } }, 'a'),
    run({ type: 'SetConfig', by: bob, values: { B: '2' } }, 'b'),
    run({ type: 'SetConfig', by: alice, values: { C: '3' } }, 'c'),
  ])
  t.same(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  )
  const refused = (outcomes[1] as PromiseRejectedResult).reason
  t.ok(refused instanceof WharfError)
  const { events } = await store.readStream(stream)
  t.same(
    events.filter((e) => e.type === 'ConfigSet').map((e) => e.correlationId),
    ['a', 'c'],
  )
})

t.test('a writer elsewhere that got in first: the group is decided again on the new state', async (t) => {
  const { store, run } = setup()
  await run({ type: 'CreateApp', by: alice, name: 'shop' }, 'create')
  // Another process (no shared cache) writes between this process's reads.
  const other = store.reopen()
  await runCommand(
    { store: other },
    { stream, decider: appDecider, command: { type: 'SetConfig', by: alice, values: { X: 'x' } }, ctx: { actor: 'user:alice' }, waitFor: [] },
  )
  await Promise.all([run({ type: 'SetConfig', by: alice, values: { A: '1' } }, 'a'), run({ type: 'SetConfig', by: alice, values: { B: '2' } }, 'b')])
  const { events } = await store.readStream(stream)
  t.same(
    events.filter((e) => e.type === 'ReleaseCreated').map((e) => (e.data as { version: number }).version),
    [1, 2, 3, 4],
  )
})

t.test('a decision on a fold a writer elsewhere has made stale is not answered before the version is asked', async (t) => {
  const { store, run } = setup()
  await run({ type: 'CreateApp', by: alice, name: 'shop' }, 'create')
  await run({ type: 'SetConfig', by: alice, values: { A: '1' } }, 'a1')
  const other = store.reopen()
  const elsewhere = (command: Parameters<typeof appDecider.decide>[0]) =>
    runCommand({ store: other }, { stream, decider: appDecider, command, ctx: { actor: 'user:alice' }, waitFor: [] })
  await elsewhere({ type: 'SetConfig', by: alice, values: { A: '2' } })
  // Here, A is still 1: nothing to change, unless the stream's version says otherwise.
  const back = await run({ type: 'SetConfig', by: alice, values: { A: '1' } }, 'a1-again')
  t.same(
    back.events.map((e) => e.type),
    ['ConfigSet', 'ReleaseCreated'],
    'decided again on the stream as it is',
  )
  t.same(back.after.config, { A: '1' }, 'the answer is the config the command left')
  // A refusal on a stale fold is checked the same way: the app was destroyed elsewhere.
  await elsewhere({ type: 'DestroyApp', by: alice, confirm: 'shop' })
  await t.rejects(run({ type: 'SetConfig', by: alice, values: { B: '2' } }, 'b'), { code: 'WHARF_NOT_FOUND' })
})
