/**
 * `make up` and the supervisor both finding a part dead at the same moment (issue 15): with the
 * part's start lock, one of them starts it and the other finds it running; never two processes of
 * one part. A NATS of this test's own under a temporary home, started by the real `up` and by the
 * real Supervisor wired as `infra/main.ts supervise` wires it, both at once.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../core/config.js'
import { nats } from './parts/nats.js'
import { contextFor, down, startPart, up } from './platform.js'
import { isAlive, livePid, waitUntil } from './proc.js'
import { startLockPath } from './start-lock.js'
import { Supervisor } from './supervisor.js'
import { freePort } from './test-env.js'

t.setTimeout(60_000)

/** How many times nats-server started, from its log. */
const starts = (log: string) =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('Starting nats-server')).length

t.test('a dead part that make up and the supervisor start at the same moment is started once', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-startlock-'))
  const natsPort = await freePort()
  let monitorPort = await freePort()
  while (monitorPort === natsPort) monitorPort = await freePort()
  const cfg = loadConfig({ WHARF_HOME: home, WHARF_NATS_PORT: String(natsPort), WHARF_NATS_MONITOR_PORT: String(monitorPort) })
  const ctx = contextFor(cfg)
  t.teardown(async () => {
    await down(ctx, [nats]).catch(() => undefined)
    rmSync(home, { recursive: true, force: true, maxRetries: 3 })
  })
  await up(ctx, { real: [nats], services: false })
  const lines: string[] = []
  const sup = new Supervisor({
    parts: [{ name: nats.name, processes: () => nats.processes!(ctx), start: () => startPart(ctx, nats, 'supervisor') }],
    log: (_level, _fields, msg) => lines.push(msg),
  })
  for (let round = 1; round <= 3; round++) {
    const pid = livePid(ctx.paths.nats.pid)!
    process.kill(pid, 'SIGKILL')
    await waitUntil('nats gone', () => !isAlive(pid), 10_000)
    const before = starts(ctx.paths.nats.log)
    // Both look now: the supervisor's tick starts it (under way), make up's start too.
    sup.tick()
    const [made] = await Promise.all([up(ctx, { real: [nats], services: false }), sup.settled()])
    t.equal(starts(ctx.paths.nats.log) - before, 1, `round ${round}: nats-server started once (log)`)
    const now = livePid(ctx.paths.nats.pid)
    t.ok(now && now !== pid && (await nats.status(ctx)).up, `round ${round}: the recorded pid runs and answers`)
    const supervisorStarted = lines.at(-1) === 'nats is back'
    t.equal(
      made.results[0]?.result === 'started',
      !supervisorStarted,
      `round ${round}: exactly one of them started it (make up: ${made.results[0]?.result}; supervisor: ${lines.at(-1)})`,
    )
  }
  await sup.stop()

  // A starter killed while it held the lock leaves it behind: the next start breaks it.
  const lock = startLockPath(ctx.paths.run, nats.name)
  writeFileSync(lock, JSON.stringify({ pid: process.pid, start: 'an earlier process with this pid', by: 'make up', at: 0, token: 'left' }))
  const pid = livePid(ctx.paths.nats.pid)!
  process.kill(pid, 'SIGKILL')
  await waitUntil('nats gone', () => !isAlive(pid), 10_000)
  t.equal(await startPart(ctx, nats, 'make up'), 'started', 'a lock left by a starter that is gone does not stop the next one')
  t.notOk(existsSync(lock), 'and the lock is gone once it is done')
})
