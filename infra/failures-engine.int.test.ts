/**
 * Kill -9 of the Docker engine, on a platform of this test's own whose engine is its own too: a
 * simulated host (a network namespace with its own dockerd, data-root, exec-root, socket, pidfile,
 * bridges and single-node swarm; infra/hosts.ts), so no other test's engine is touched. Under a
 * steady stream of `config:set` and requests to an app through the router: the supervisor starts
 * the engine again, commands keep working, /healthz is 503 while the engine is away (the publisher
 * does not follow its events) and 200 after, the app answers while no dockerd runs (ports forwarded
 * by the kernel: `--userland-proxy=false`), and the platform catches up with what the engine did
 * meanwhile: without live-restore (swarm mode refuses it) the restarted engine stops the old
 * containers while it starts and the swarm starts new ones; the publisher announces both, and the
 * containers the read model has up are the ones the engine runs. A scale (web 1 -> 2) is in flight
 * during the kill, and converges.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { killAndRecover, startDrill, testRegistryAuth } from './failures.js'

t.setTimeout(240_000)

t.test('the Docker engine killed with -9 comes back by itself; apps answer while it is dead; the platform catches up', async (t) => {
  const t0 = Date.now()
  const d = await startDrill({ ownEngine: true, registry: process.env.WHARF_TEST_REGISTRY, registryAuth: testRegistryAuth() })
  t.teardown(() => d.stop())
  t.ok(d.web, `an app serving through the router from the drill's own engine (${d.web})`)
  const upAt = Date.now()
  t.comment(`drill up in ${((upAt - t0) / 1000).toFixed(1)} s`)
  const r = await killAndRecover(d, 'engine', { everyMs: 250, timeoutMs: 60_000, deployTo: 2, holdSupervisorMs: 2_000 })
  t.comment(JSON.stringify(r))
  // Whether the kill came between the scheduler's look at the services and its change (the window in
  // which a scale used to be failed for good, 2 of 5 runs): then it applies the change once the engine is back.
  const met = readFileSync(d.ctx.paths.workers.log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('the engine cannot be reached; the deploy is applied')).length
  console.error(`failures-engine: the scheduler's change met the dead engine: ${met > 0 ? 'yes' : 'no'}`)
  // The figures, also when the test passes (make test shows a passing file's stderr only).
  console.error(`failures-engine: ${JSON.stringify(r)}`)
  // Dead: from the kill until the supervisor ran a new dockerd (which, without live-restore, stops the
  // old containers while it starts: the swarm then starts new ones).
  const startedAgain = readFileSync(d.ctx.paths.supervisor.log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { time: string; part?: string; msg: string })
    .find((l) => l.part === 'hosts' && l.msg.includes('starting it again'))
  t.ok(startedAgain, 'the supervisor logged that it started the engine again')
  const deadMs = Date.parse(startedAgain!.time) - r.killedAt
  // The supervisor is held for the first 2 s, so that no dockerd runs for that long; then it starts one
  // at its next look (every second). The pid is recorded once the engine answers (its own start-up).
  t.ok(deadMs >= 2_000 && deadMs < 5_000, `started again by the supervisor within 3 s of it going on (${deadMs} ms after the kill)`)
  t.ok(r.restartedMs >= 0, `a new engine runs (recorded ${r.restartedMs} ms after the kill, once it answered)`)
  t.ok(r.backMs >= 0 && r.backMs < 60_000, `answering again by itself (${r.backMs} ms)`)
  t.ok(r.commandsBackMs >= 0, `commands succeed (${r.commandsBackMs} ms after the kill; ${r.commandsFailed} of ${r.commandsSent} failed)`)
  t.ok(r.commandsAfterBackMs <= 10_000, `commands succeed within 10 s of the engine being back (${r.commandsAfterBackMs} ms)`)
  t.ok(r.sawUnhealthy, '/healthz said 503 while the engine was away')
  t.ok(r.unhealthyReason && !r.unhealthyReason.includes('\n'), `with the reason in one line (${r.unhealthyReason})`)
  t.ok(r.healthyAfterBackMs >= 0, `/healthz is 200 again (${r.healthyAfterBackMs} ms after the engine was back)`)
  const failedWhileDead = r.appFailedAtMs.filter((ms) => ms < deadMs)
  t.same(failedWhileDead, [], `no request to the app failed while no dockerd ran (${deadMs} ms; failures at ${r.appFailedAtMs.join(', ')} ms after the kill)`)
  t.ok(
    r.convergedMs !== undefined && r.convergedMs >= 0,
    `the scale to web=2 converged and the platform caught up: the containers announced up are the ones the engine runs (${r.convergedMs} ms after the kill)`,
  )
  if (!(r.convergedMs !== undefined && r.convergedMs >= 0) && process.env.WHARF_DRILL_LOGS) {
    // Kept for a diagnosis: the services', the workers' and the supervisor's logs (the drill's home goes at its end).
    const dir = `${process.env.WHARF_DRILL_LOGS}/${new Date(r.killedAt).toISOString()}`
    mkdirSync(dir, { recursive: true })
    copyFileSync(d.ctx.paths.services.log, `${dir}/wharf.log`)
    copyFileSync(d.ctx.paths.workers.log, `${dir}/workers.log`)
    copyFileSync(d.ctx.paths.supervisor.log, `${dir}/supervisor.log`)
    console.error(`failures-engine: logs kept in ${dir}`)
  }
  t.comment(`requests to the app that failed in all: ${r.appFailed} of ${r.appSent} (the restarted engine replaces the containers)`)
  t.comment(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  console.error(
    `failures-engine: drill up in ${((upAt - t0) / 1000).toFixed(1)} s, test ${((Date.now() - t0) / 1000).toFixed(1)} s; dockerd dead for ${deadMs} ms`,
  )
})
