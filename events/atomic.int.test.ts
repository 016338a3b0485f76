/**
 * No event lost, none applied twice, even in the gaps, against the real NATS: a consumer whose
 * deliveries are dropped on the wire (a proxy between it and nats-server eats chosen MSG frames)
 * still handles every event once, in order; a writer killed in the middle of publishing a commit
 * leaves none of its events in the log, and one killed after it leaves all of them.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createLogger } from '../core/log.js'
import { testNatsUrl, uniqueName, until } from '../test/harness.js'
import { connectJetStream } from './connection.js'
import { startConsumer } from './consumer.js'
import { newEventId, type RecordedEvent } from './envelope.js'
import { JetStreamEventStore } from './jetstream.js'
import { EventSubjects } from './subjects.js'
import { firstDeliveryOf, messageGetReplyOf, NatsProxy, type Frame } from './testing/nats-proxy.js'
import { thingCatalogue } from './testing/things.js'

const servers = testNatsUrl()
const ctx = { actor: 'user:test' }

async function setup(t: Test) {
  const subjects = new EventSubjects(uniqueName('atomic').toLowerCase())
  const writer = await JetStreamEventStore.connect({ servers, catalogue: thingCatalogue(), subjects, name: 'wharf-atomic-writer' })
  const proxy = await NatsProxy.start(servers)
  t.teardown(async () => {
    await proxy.close()
    await writer.destroy()
    await writer.close()
  })
  /** Appends `commits` commits to `app.a`, alternately of one and of three events; answers their ids in log order. */
  const ids: string[] = []
  let version = 0
  let n = 0
  const appendCommits = async (commits: number) => {
    for (let i = 0; i < commits; i++) {
      const size = version % 2 === 0 ? 1 : 3
      const events = Array.from({ length: size }, () => ({ id: newEventId(), type: 'ThingAdded', data: { n: n++ } }))
      version = (await writer.append('app.a', events, { ...ctx, expectedVersion: version })).lastSeq
      ids.push(...events.map((e) => e.id))
    }
    return version
  }
  return { subjects, writer, proxy, ids, appendCommits }
}

t.test('deliveries lost on the wire are read again: the consumer handles every event once, in order, and acks none unseen', async (t) => {
  const env = await setup(t)
  const durable = 'gappy'
  // Commits 4 (three events) and 7 (one) are lost before the subscription starts, 12 and 17 while it follows live.
  const lose = new Set([4, 7, 12, 17])
  const lost: number[] = []
  env.proxy.toClient = (f) => {
    const seq = firstDeliveryOf(f, env.subjects.stream, durable)
    if (seq === undefined || !lose.delete(seq)) return 'pass'
    lost.push(seq)
    return 'drop'
  }
  const reader = await JetStreamEventStore.connect({ servers: env.proxy.url, catalogue: thingCatalogue(), subjects: env.subjects, name: 'wharf-atomic-reader' })
  t.teardown(() => reader.close())
  await env.appendCommits(10)
  const handled: RecordedEvent[] = []
  const start = () =>
    startConsumer({
      store: reader,
      durableName: durable,
      log: createLogger({ level: 'silent' }),
      name: 'gap test',
      retryMs: 50,
      handle: async (e) => void handled.push(e),
    })
  const consumer = await start()
  await until('the first ten commits', async () => handled.length >= 20, 10_000, 20)
  for (let i = 0; i < 10; i++) {
    await env.appendCommits(1)
    await new Promise((r) => setTimeout(r, 5))
  }
  const last = await env.appendCommits(1)
  await until('every event', async () => handled.at(-1)?.seq === last && handled.length >= env.ids.length, 10_000, 20)
  t.same(lost, [4, 7, 12, 17], 'the proxy really dropped those deliveries')
  t.same(
    handled.map((e) => e.id),
    env.ids,
    'every event handled once, in log order',
  )
  await consumer.stop()
  const { nc, jsm } = await connectJetStream({ servers, name: 'wharf-atomic-check' })
  t.teardown(() => nc.close())
  const info = await jsm.consumers.info(env.subjects.stream, durable)
  t.equal(info.ack_floor.stream_seq, last, 'everything is acked, up to the last commit')

  // Nothing comes again after a restart: the next event is the first one handled.
  const again = await start()
  const before = handled.length
  await env.appendCommits(1)
  await until('the next event', async () => handled.length > before, 10_000, 20)
  t.same(
    handled.slice(before).map((e) => e.id),
    env.ids.slice(before),
  )
  await again.stop()
})

t.test('a delivery lost while reading is read again: readAll and readStream answer every event, and nothing past the end', async (t) => {
  const env = await setup(t)
  const reader = await JetStreamEventStore.connect({ servers: env.proxy.url, catalogue: thingCatalogue(), subjects: env.subjects, name: 'wharf-atomic-read' })
  t.teardown(() => reader.close())
  const last = await env.appendCommits(12)
  const lose = (seqs: number[]) => {
    const left = new Set(seqs)
    const lost: number[] = []
    env.proxy.toClient = (f) => {
      const seq = firstDeliveryOf(f, env.subjects.stream)
      if (seq === undefined || !left.delete(seq)) return 'pass'
      lost.push(seq)
      return 'drop'
    }
    return lost
  }
  // 3 in the middle (a commit of three), 12 at the very end of the read.
  let lost = lose([3, 12])
  const all: RecordedEvent[] = []
  const it = reader.readAll(1, { batch: 4 })[Symbol.asyncIterator]()
  for (let r = await it.next(); !r.done; r = await it.next()) {
    all.push(r.value)
    // Appended during the read: not part of it.
    if (all.length === 1) await env.writer.append('app.b', [{ type: 'ThingAdded', data: { n: -1 } }], { ...ctx, expectedVersion: 0 })
  }
  t.same(lost, [3, 12], 'the proxy really dropped those deliveries')
  t.same(
    all.map((e) => e.id),
    env.ids,
    'readAll: every event to the end at the time of the call, in order, once',
  )
  t.equal(all.at(-1)?.seq, last)
  // readStream gets an event stream's messages one by one (message gets): an answer lost on the way is asked for again.
  const left = new Set([5])
  lost = []
  env.proxy.toClient = (f) => {
    const seq = messageGetReplyOf(f)
    if (seq === undefined || !left.delete(seq)) return 'pass'
    lost.push(seq)
    return 'drop'
  }
  const { events, version } = await reader.readStream('app.a')
  t.same(lost, [5], 'the proxy really dropped the answer of a message get')
  t.same(
    events.map((e) => e.id),
    env.ids,
    'readStream (a filtered read) too',
  )
  t.equal(version, last)
})

const child = fileURLToPath(new URL('./testing/append-child.ts', import.meta.url))

/** Runs the writer child through the proxy; `cutAt(frame)` says where to cut its publish of the commit (the child is then SIGKILLed). */
function killedWriter(env: Awaited<ReturnType<typeof setup>>, app: string, ids: string[], cutAt: (f: Frame) => number) {
  const subject = env.subjects.subjectOf(`app.${app}`)
  let cutting = false
  env.proxy.toServer = (f) => {
    if (!f.line.startsWith(`HPUB ${subject} `)) return 'pass'
    cutting = true
    return { cutAt: cutAt(f) }
  }
  // Once cutting, the writer hears nothing more: it dies without its acknowledgement.
  env.proxy.toClient = () => (cutting ? 'drop' : 'pass')
  return new Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, env.proxy.url, env.subjects.namespace, app, ...ids], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += String(d)))
    p.stderr.on('data', (d) => (stderr += String(d)))
    env.proxy.onCut = () => p.kill('SIGKILL')
    p.on('error', reject)
    p.on('exit', (_code, signal) => resolve({ signal, stdout, stderr }))
  })
}

t.test('a writer killed between the events of one append leaves none of them; killed after the publish, all of them', async (t) => {
  const env = await setup(t)
  const ids = [newEventId(), newEventId(), newEventId()]
  // Cut right where the second event begins: the server has the first event's bytes, not the rest.
  const cut = await killedWriter(env, 'x', ids, (f) => f.bytes.indexOf(`{"id":"${ids[1]}"`))
  t.equal(cut.signal, 'SIGKILL', `the writer was killed mid-publish (stderr: ${cut.stderr.slice(0, 300)})`)
  t.equal(cut.stdout, '', 'it never saw its append succeed')
  await new Promise((r) => setTimeout(r, 200))
  t.same(await env.writer.readStream('app.x'), { version: 0, events: [] }, 'none of the commit is in the log')
  t.equal(await env.writer.lastSeq(), 0)
  // The writer's retry (same ids, same expected version) writes the whole commit, once.
  const retry = await env.writer.append(
    'app.x',
    ids.map((id, i) => ({ id, type: 'ThingAdded', data: { n: i + 1 } })),
    { ...ctx, expectedVersion: 0 },
  )
  t.same([retry.duplicate, retry.seqs], [false, [1, 1, 1]])
  t.same(
    (await env.writer.readStream('app.x')).events.map((e) => [e.id, e.seq, e.index]),
    ids.map((id, i) => [id, 1, i]),
  )

  const more = [newEventId(), newEventId(), newEventId()]
  const after = await killedWriter(env, 'y', more, (f) => f.bytes.length)
  t.equal(after.signal, 'SIGKILL', `the writer was killed after its publish (stderr: ${after.stderr.slice(0, 300)})`)
  t.equal(after.stdout, '', 'before it heard back')
  const written = await until('the commit', async () => {
    const r = await env.writer.readStream('app.y')
    return r.events.length > 0 && r
  })
  t.same(
    written.events.map((e) => [e.id, e.seq, e.index, e.commitSize]),
    more.map((id, i) => [id, 2, i, 3]),
    'all of the commit is in the log, as one commit',
  )
  const retried = await env.writer.append(
    'app.y',
    more.map((id, i) => ({ id, type: 'ThingAdded', data: { n: i + 1 } })),
    { ...ctx, expectedVersion: 0 },
  )
  t.same([retried.duplicate, retried.seqs], [true, [2, 2, 2]], 'the retry is a duplicate')
  t.equal((await env.writer.readStream('app.y')).events.length, 3, 'no second copy')
})
