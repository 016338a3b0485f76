/**
 * For integration tests that need an image in the test Docker engine (`WHARF_TEST_DOCKER_HOST`):
 * builds one from a Dockerfile (FROM busybox: nothing is pulled), removed in teardown.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import type { Test } from 'tap'
import { type RegistryLogin, registryHeaders } from '../../core/config.js'
import { DockerEngine, dockerClient } from '../../core/engine/docker.js'
import { uniqueName } from '../../test/harness.js'
import type { TestController } from '../controller/testing.js'
import { HookServer } from './hook.js'
import { ensureHostKey } from './hostkey.js'
import { builderPool } from './service.js'
import { startSshServer } from './ssh.js'

function testDockerHost(): string {
  const host = process.env.WHARF_TEST_DOCKER_HOST
  if (!host) throw new Error('WHARF_TEST_DOCKER_HOST is not set: run integration tests through `make test`')
  return host
}

/** The test Docker engine, raw (for what tests do beside the services); throws unless `make test` (or the dev wrapper) named it. */
export function testDocker(): Docker {
  return dockerClient(testDockerHost())
}

/** The test Docker engine behind the container-engine port, as the services get it. */
export function testEngine(): DockerEngine {
  return DockerEngine.at(testDockerHost(), testRegistryLogin())
}

/** `127.0.0.1:<port>` of the test registry. */
export function testRegistry(): string {
  const r = process.env.WHARF_TEST_REGISTRY
  if (!r) throw new Error('WHARF_TEST_REGISTRY is not set: run integration tests through `make test`')
  return r
}

/** The test registry's credentials (`make test` names them in WHARF_TEST_REGISTRY_USER / _PASSWORD). */
export function testRegistryLogin(): RegistryLogin {
  const username = process.env.WHARF_TEST_REGISTRY_USER
  const password = process.env.WHARF_TEST_REGISTRY_PASSWORD
  if (!username || !password) throw new Error('WHARF_TEST_REGISTRY_USER / WHARF_TEST_REGISTRY_PASSWORD are not set: run integration tests through `make test`')
  return { serveraddress: testRegistry(), username, password }
}

/** The settings a controller or builder of a test needs to reach the test registry with its credentials. */
export function testRegistryEnv(): NodeJS.ProcessEnv {
  const { serveraddress, username, password } = testRegistryLogin()
  return { WHARF_REGISTRY_PORT: serveraddress.split(':')[1], WHARF_REGISTRY_USER: username, WHARF_REGISTRY_PASSWORD: password }
}

/** The `Authorization` header of a plain HTTP request to the test registry. */
export function testRegistryHeaders(): Record<string, string> {
  return registryHeaders(testRegistryLogin())
}

/**
 * Builds `dockerfile` as `wharf-test-<unique>:1` (labelled `wharf.test`, with a unique label so each
 * build has an image id of its own) and removes it in teardown. Answers the tag.
 */
export async function buildTestImage(t: Test, docker: Docker, dockerfile: string): Promise<string> {
  const tag = `${uniqueName('wharf-test').toLowerCase().replace(/_/g, '-')}:1`
  const dir = mkdtempSync(join(tmpdir(), 'wharf-image-'))
  try {
    writeFileSync(join(dir, 'Dockerfile'), dockerfile)
    const stream = await docker.buildImage({ context: dir, src: ['Dockerfile'] }, { t: tag, labels: { 'wharf.test': 'true', 'wharf.test.id': tag } })
    const out = await new Promise<{ error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
    )
    const failed = out.find((o) => o.error)
    if (failed) throw new Error(`docker build ${tag}: ${failed.error}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(() => removeImage(docker, tag))
  return tag
}

/**
 * Pulls `ref` from its registry into the engine, with `login` (default: the test registry's
 * credentials for an image in it, none for another).
 */
export async function pullImage(docker: Docker, ref: string, login?: RegistryLogin): Promise<void> {
  const auth = login ?? (ref.startsWith(`${testRegistry()}/`) ? testRegistryLogin() : undefined)
  const stream = await docker.pull(ref, { authconfig: (auth ?? {}) as Docker.AuthConfig })
  const out = await new Promise<{ error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  )
  const failed = out.find((o) => o.error)
  if (failed) throw new Error(`pull ${ref}: ${failed.error}`)
}

/** Removes a local image tag, if it is there. */
export async function removeImage(docker: Docker, ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ force: true })
    .catch(() => {})
}

/**
 * The builder's SSH server for a test controller (same event store, database and WHARF_HOME), on
 * `cfg.ports.builder` of the controller (give it a free port), stopped in teardown. Answers its port.
 */
export async function startTestBuilder(
  t: Test,
  c: TestController,
  opts: { lockTimeoutMs?: number; buildTimeoutMs?: number; deployTimeoutMs?: number; serveTimeoutMs?: number } = {},
): Promise<number> {
  const hooks = await HookServer.listen(join(mkdtempSync(join(tmpdir(), 'wharf-hooks-')), 'hooks.sock'))
  // Its own pool, as the builder service has (bounded by WHARF_PUSHES_MAX).
  const pool = builderPool(c.deps.cfg.databaseUrl!, c.deps.cfg.pushes.max)
  pool.on('error', () => {})
  const ssh = await startSshServer({
    ...c.deps,
    pool,
    docker: testEngine(),
    builderId: 'test',
    hooks,
    hostKey: ensureHostKey(c.deps.cfg.home).privateKey,
    lockTimeoutMs: opts.lockTimeoutMs ?? 60_000,
    ...(opts.buildTimeoutMs ? { buildTimeoutMs: opts.buildTimeoutMs } : {}),
    ...(opts.deployTimeoutMs ? { deployTimeoutMs: opts.deployTimeoutMs } : {}),
    ...(opts.serveTimeoutMs ? { serveTimeoutMs: opts.serveTimeoutMs } : {}),
  })
  t.teardown(async () => {
    await ssh.close()
    await hooks.close()
    await pool.end()
  })
  return ssh.port
}
