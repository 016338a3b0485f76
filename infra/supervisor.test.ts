import t from 'tap'
import { Supervisor, type SupervisedPart, type SupervisorState } from './supervisor.js'

/** A part whose process lives or dies as the test says, and whose start can be made to fail. */
function fakePart(name: string, opts: { failures?: number; orphanedWorkers?: boolean } = {}) {
  const p = { pid: 100 as number | undefined, starts: 0, failures: opts.failures ?? 0 }
  const part: SupervisedPart = {
    name,
    processes: () => [p.pid],
    async start() {
      p.starts++
      if (p.failures > 0) {
        p.failures--
        throw new Error('port 5432 is already taken\nmore lines')
      }
      p.pid = 200 + p.starts
    },
    ...(opts.orphanedWorkers ? { orphanedWorkers: true } : {}),
  }
  return { part, p }
}

function setup(parts: SupervisedPart[]) {
  let now = 0
  const lines: string[] = []
  const states: SupervisorState[] = []
  const killed: number[] = []
  const alive = new Set<number>([101, 102])
  const s = new Supervisor({
    parts,
    now: () => now,
    log: (_level, _fields, msg) => lines.push(msg),
    onChange: (st) => states.push(st),
    children: (pid) =>
      pid === 100
        ? [
            { pid: 101, start: 'a' },
            { pid: 102, start: 'b' },
          ]
        : [],
    stillRuns: (w) => alive.has(w.pid),
    kill: (pid) => {
      killed.push(pid)
      alive.delete(pid)
    },
  })
  return { s, lines, states, killed, alive, advance: (ms: number) => (now += ms) }
}

t.test('a part whose process died is started again and the restart is recorded', async (t) => {
  const nats = fakePart('nats')
  const pg = fakePart('postgres')
  const { s, lines, states } = setup([nats.part, pg.part])
  s.tick()
  await s.settled()
  t.equal(nats.p.starts, 0, 'nothing started while everything runs')
  nats.p.pid = undefined
  s.tick()
  await s.settled()
  t.equal(nats.p.starts, 1)
  t.equal(pg.p.starts, 0, 'the others are left alone')
  t.match(s.state().parts.nats, { state: 'up', restarts: 1, failures: 0, lastRestartMs: 0 })
  t.match(lines, ['nats is down; starting it again', 'nats is back'])
  t.ok(states.length >= 2, 'the record is written on each change')
})

t.test('a start that fails is tried again after a bounded, growing backoff', async (t) => {
  const pg = fakePart('postgres', { failures: 2 })
  const { s, advance } = setup([pg.part])
  pg.p.pid = undefined
  s.tick()
  await s.settled()
  t.equal(pg.p.starts, 1)
  t.match(s.state().parts.postgres, { state: 'waiting', failures: 1, lastError: 'port 5432 is already taken' })
  s.tick()
  await s.settled()
  t.equal(pg.p.starts, 1, 'not again before the backoff')
  advance(1_000)
  s.tick()
  await s.settled()
  t.equal(pg.p.starts, 2, 'again after about 1 s')
  advance(1_000)
  s.tick()
  await s.settled()
  t.equal(pg.p.starts, 2, 'the second pause is longer')
  advance(1_000)
  s.tick()
  await s.settled()
  t.equal(pg.p.starts, 3)
  t.match(s.state().parts.postgres, { state: 'up', restarts: 1, failures: 2 })
})

t.test('workers a dead master left behind are stopped before it starts again; a part with no processes is not supervised', async (t) => {
  const nginx = fakePart('nginx', { orphanedWorkers: true })
  const external: SupervisedPart = { name: 'docker', processes: () => [], start: async () => t.fail('not started') }
  const { s, killed, alive } = setup([nginx.part, external])
  s.tick()
  alive.delete(102)
  nginx.p.pid = undefined
  s.tick()
  await s.settled()
  t.same(killed, [101], 'only the worker that still runs, by the pid seen')
  t.equal(nginx.p.starts, 1)
  t.equal(s.state().parts.docker?.state, 'unsupervised')
  await s.stop()
})

t.test('a part that another starter (make up) brought back meanwhile is left alone and not counted as a restart', async (t) => {
  const p = { pid: undefined as number | undefined, starts: 0 }
  const part: SupervisedPart = {
    name: 'nats',
    processes: () => [p.pid],
    // As startPart answers when it got the start lock second: make up started it; nothing spawned here.
    async start() {
      p.pid = 300
      return 'running'
    },
  }
  const { s, lines } = setup([part])
  s.tick()
  await s.settled()
  t.match(s.state().parts.nats, { state: 'up', restarts: 0, failures: 0 })
  t.match(lines, ['nats is down; starting it again', 'nats was started by another starter meanwhile (make up); left alone'])
})
