/**
 * The event log on a NATS cluster of three servers (their own, on loopback ports of this test) with
 * the stream at replicas 3: under a steady 200 appends a second, the stream's leader is SIGKILLed.
 * Appends go on (an append that fails is sent again with the same event ids, as every writer does);
 * afterwards the log holds every event once: 0 lost, 0 applied twice. Prints the longest pause.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { randomUUID } from 'node:crypto'
import { wharfCatalogue } from '../domain/index.js'
import { EventSubjects, JetStreamEventStore, newEventId, streamId } from '../events/index.js'
import { clusterUrl, startNatsCluster, stopNatsCluster, type NatsMember } from './nats-cluster.js'
import { freePort } from './test-env.js'

t.setTimeout(120_000)

const RATE = 200
const WRITERS = 4
const RUN_MS = 10_000
const KILL_AT_MS = 2_500

t.test('a NATS server lost under 200 appends/s: appends go on, 0 events lost, 0 twice', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-nats-cluster-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const members: NatsMember[] = []
  for (const name of ['n1', 'n2', 'n3']) members.push({ name, host: '127.0.0.1', clientPort: await freePort(), clusterPort: await freePort() })
  const running = await startNatsCluster(dir, members)
  t.teardown(() => stopNatsCluster(running))

  const namespace = `nc${randomUUID().slice(0, 8)}`
  const subjects = new EventSubjects(namespace)
  const url = clusterUrl(members)
  // The stream is made once the cluster has a meta leader (JetStream answers "unavailable" before).
  let store: JetStreamEventStore | undefined
  for (let i = 0; !store; i++) {
    try {
      store = await JetStreamEventStore.connect({ servers: url, catalogue: wharfCatalogue(), subjects, replicas: 3 })
    } catch (err) {
      if (i > 100) throw err
      await sleep(200)
    }
  }
  t.teardown(async () => {
    await store!.destroy().catch(() => {})
    await store!.close()
  })
  const nc = await connect({ servers: url.split(',') })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const info = await jsm.streams.info(subjects.stream)
  t.equal(info.config.num_replicas, 3, 'the stream has three replicas')
  const leader = info.cluster?.leader
  t.ok(leader, `the stream has a leader (${leader})`)

  const sent: string[] = []
  /** When each append was acknowledged, ms from the start. */
  const ackedAt: number[] = []
  let failedAttempts = 0
  let longestPauseMs = 0
  const t0 = Date.now()
  let killedAt = 0
  const writer = async (w: number) => {
    const stream = streamId('runtime', `${namespace}w${w}`)
    let version = 0
    let last = Date.now()
    for (let n = 0; Date.now() - t0 < RUN_MS; n++) {
      const due = t0 + (n * 1000 * WRITERS) / RATE
      if (due > Date.now()) await sleep(due - Date.now())
      const id = newEventId()
      const event = { id, type: 'DeployStarted', data: { app: `${namespace}w${w}`, release: n + 1, formation: { web: 1 } } }
      for (;;) {
        try {
          const r = await store!.append(stream, [event], { actor: 'test', expectedVersion: version })
          version = r.lastSeq
          break
        } catch {
          // Sent again with the same id: stored once whether or not the first try got in.
          failedAttempts++
          await sleep(50)
        }
      }
      sent.push(id)
      ackedAt.push(Date.now() - t0)
      longestPauseMs = Math.max(longestPauseMs, Date.now() - last)
      last = Date.now()
    }
  }
  const killer = (async () => {
    await sleep(KILL_AT_MS)
    const victim = running.find((m) => m.name === leader)!
    killedAt = Date.now() - t0
    process.kill(victim.pid, 'SIGKILL')
  })()
  await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), killer])
  t.ok(killedAt > 0, `the leader ${leader} was killed at ${killedAt} ms`)
  const rate = Math.round(sent.length / (RUN_MS / 1000))
  // The appends under way when the leader died wait for their acknowledgement's timeout, then go again.
  // On a loaded machine the election may outlast the run: the writers then go on (up to 30 s more)
  // until appends are acknowledged again.
  let afterPause = ackedAt.filter((ms) => ms > killedAt + longestPauseMs).length
  const more = Date.now() + 30_000
  for (let w = 0; afterPause < WRITERS * 5 && Date.now() < more; w = (w + 1) % WRITERS) {
    const stream = streamId('runtime', `${namespace}w${w}`)
    const id = newEventId()
    for (;;) {
      try {
        await store!.append(stream, [{ id, type: 'DeployStarted', data: { app: `${namespace}w${w}`, release: 1, formation: { web: 1 } } }], {
          actor: 'test',
          expectedVersion: 'any',
        })
        break
      } catch {
        failedAttempts++
        if (Date.now() > more) throw new Error('no append acknowledged within 30 s of the run')
        await sleep(50)
      }
    }
    sent.push(id)
    afterPause++
  }
  t.ok(afterPause > 0, `appends went on after the loss: ${afterPause} acknowledged after the longest pause`)
  // The issue asks for the longest pause to be reported; bounded here so that a cluster that stalls fails.
  t.ok(longestPauseMs < 20_000, `the longest pause (${longestPauseMs} ms) is bounded (8 s an append may take, more on a loaded machine)`)

  // Read back from the two servers left: each event once. Making the reader's consumer needs the
  // cluster's meta leader, which may still be in election right after the loss: a read cut by a
  // timeout is made again from the start (a reader of the log would retry the same way).
  let ids: string[] = []
  for (let attempt = 1; ; attempt++) {
    try {
      ids = []
      for await (const e of store!.readAll(1)) ids.push(e.id)
      break
    } catch (err) {
      const timedOut = (err as Error).constructor?.name === 'TimeoutError' || /timeout/i.test((err as Error).message)
      if (attempt >= 6 || !timedOut) throw err
      console.error(`# nats cluster: read back attempt ${attempt} timed out (${(err as Error).message}); again in 2 s`)
      await sleep(2_000)
    }
  }
  const once = new Set(ids)
  const lost = sent.filter((id) => !once.has(id)).length
  t.equal(lost, 0, 'no event lost')
  t.equal(ids.length, once.size, 'no event twice')
  t.equal(ids.length, sent.length, 'exactly what was appended')
  console.error(
    `# nats cluster: appends: ${sent.length} at ~${rate}/s; leader killed at ${killedAt} ms; failed attempts (sent again): ${failedAttempts}; longest pause: ${longestPauseMs} ms`,
  )
  console.error(`# nats cluster: after the loss: stream leader ${(await jsm.streams.info(subjects.stream)).cluster?.leader}`)
})
