/**
 * For integration tests: the scheduler against a test controller's event store and database and the
 * test Docker engine, with its namespace's services removed in teardown.
 */
import type { Test } from 'tap'
import { testEngine, testRegistry } from '../builder/testing.js'
import type { TestController } from '../controller/testing.js'
import { LABELS } from '../../domain/runtime/labels.js'
import { startScheduler, type RunningScheduler, type StartSchedulerOptions } from './service.js'

/** Removes every Swarm service of `namespace` (test teardown). */
export async function removeNamespaceServices(namespace: string): Promise<void> {
  const engine = testEngine()
  const services = await engine.listServices({ [LABELS.namespace]: namespace })
  await Promise.all(services.map((s) => engine.removeService(s.id).catch(() => {})))
}

/** Starts a scheduler for `c`'s namespace; stopped (and its services removed) in teardown. */
export async function startTestScheduler(t: Test, c: TestController, opts: StartSchedulerOptions = {}): Promise<RunningScheduler> {
  const running = await startScheduler(
    { store: c.deps.store, pool: c.deps.pool, docker: testEngine(), namespace: c.deps.cfg.namespace, registry: testRegistry(), log: c.deps.log },
    // A short drain (the platform's is WHARF_DRAIN_TIME, 5 s), and a shorter longest drain (30 s: a
    // test that stops its router leaves draining containers listed): tests that measure them set their own.
    { deployTimeoutMs: 30_000, ...opts, spec: { drainMs: 1_000, drainMaxMs: 10_000, ...opts.spec } },
  )
  t.teardown(async () => {
    await running.stop()
  })
  return running
}
