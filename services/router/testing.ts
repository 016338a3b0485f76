/**
 * For integration tests: the router against a test controller's event store and database, writing
 * the routes of the nginx that `make test` started (WHARF_TEST_HOME, WHARF_TEST_ROUTER_PORT). One
 * router at a time may own that nginx's routes file.
 */
import type { Test } from 'tap'
import { pathsFor } from '../../core/paths.js'
import { nginx as nginxPart } from '../../infra/parts/nginx.js'
import type { TestController } from '../controller/testing.js'
import { startRouter, type RunningRouter, type StartRouterOptions } from './service.js'

/** The test platform's router port. */
export function testRouterPort(): number {
  const port = Number(process.env.WHARF_TEST_ROUTER_PORT)
  if (!port) throw new Error('WHARF_TEST_ROUTER_PORT is not set: run integration tests through `make test`')
  return port
}

/** Starts a router for `c`'s namespace on the test nginx; stopped in teardown (its routes file is emptied). */
export async function startTestRouter(t: Test, c: TestController, opts: StartRouterOptions & { domain?: string } = {}): Promise<RunningRouter> {
  const home = process.env.WHARF_TEST_HOME
  if (!home) throw new Error('WHARF_TEST_HOME is not set: run integration tests through `make test`')
  const paths = pathsFor(home)
  const port = testRouterPort()
  const running = await startRouter(
    {
      store: c.deps.store,
      pool: c.deps.pool,
      log: c.deps.log,
      paths: paths.nginx,
      port,
      domain: opts.domain ?? c.deps.cfg.domain,
      maxBodySizeCap: c.deps.cfg.limits.bodySizeCap,
    },
    { durableName: `router-${c.deps.cfg.namespace}`, ...opts },
  )
  t.teardown(() => running.stop())
  return running
}

/**
 * Starts the test platform's nginx when it is not running, as its supervisor would (the router never
 * starts nginx), on the ports it had: its base config is written anew from these.
 */
export async function startTestNginx(c: TestController): Promise<void> {
  const home = process.env.WHARF_TEST_HOME
  const tlsPort = Number(process.env.WHARF_TEST_ROUTER_TLS_PORT)
  if (!home || !tlsPort) throw new Error('WHARF_TEST_HOME or WHARF_TEST_ROUTER_TLS_PORT is not set: run integration tests through `make test`')
  const cfg = { ...c.deps.cfg, home, ports: { ...c.deps.cfg.ports, router: testRouterPort(), routerTls: tlsPort } }
  await nginxPart.start({ cfg, paths: pathsFor(home), say: () => {} })
}
