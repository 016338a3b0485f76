/**
 * `wharf run` through the real API and Docker engine: a WebSocket at /v1/apps/:app/run runs a
 * one-off container of the current release, streams stdout and stderr apart, answers the exit
 * code, takes stdin and a TTY, and removes the container in every case.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { uniqueName } from '../../../test/harness.js'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../../builder/testing.js'
import { STDERR, STDOUT } from '../apps/run-protocol.js'
import { registerAndLogin, startEngineController, type TestController } from '../testing.js'

const docker = testDocker()

interface Outcome {
  stdout: string
  stderr: string
  exit?: number
  error?: { code: string; message: string }
  started?: { container: string; release: number }
  /** The HTTP status of a refused upgrade. */
  status?: number
}

/** Opens a run socket; `onOpen` may send more after the start message. Resolves when the server closes. */
function run(
  c: TestController,
  token: string | undefined,
  app: string,
  start: Record<string, unknown> | undefined,
  onOpen?: (ws: WebSocket, out: Outcome) => void,
): Promise<Outcome> {
  const out: Outcome = { stdout: '', stderr: '' }
  const ws = new WebSocket(`${c.url.replace(/^http/, 'ws')}/v1/apps/${app}/run`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d))
      res.on('end', () => {
        out.status = res.statusCode
        out.error = JSON.parse(body)
        resolve(out)
      })
    })
    ws.on('open', () => {
      if (start) ws.send(JSON.stringify({ type: 'start', ...start }))
      onOpen?.(ws, out)
    })
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        if (data[0] === STDOUT) out.stdout += data.subarray(1).toString()
        else if (data[0] === STDERR) out.stderr += data.subarray(1).toString()
        return
      }
      const msg = JSON.parse(data.toString())
      if (msg.type === 'exit') out.exit = msg.code
      else if (msg.type === 'error') out.error = { code: msg.code, message: msg.message }
      else if (msg.type === 'started') out.started = { container: msg.container, release: msg.release }
    })
    ws.on('close', () => resolve(out))
    ws.on('error', (err) => (out.status === undefined ? reject(err) : undefined))
  })
}

/** One-off containers of `app` still in the engine. */
async function runContainers(app: string) {
  return docker.listContainers({ all: true, filters: { label: [`wharf.app=${app}`, 'wharf.run'] } })
}

interface World {
  c: TestController
  app: string
  alice: string
  carol: string
  image: string
}

/** A controller with the test engine and registry, and alice's app released from a busybox image. */
async function world(t: Test): Promise<World> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-run-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  const carol = await registerAndLogin(c, 'carol')
  const app = `run-${uniqueName('r')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  const created = await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })
  if (created.status !== 201) throw new Error(`create ${app}: ${created.status} ${JSON.stringify(created.body)}`)
  const source = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${Date.now()} > /stamp\nCMD ["sleep", "1000"]\n`)
  const id12 = (await docker.getImage(source).inspect()).Id.replace(/^sha256:/, '').slice(0, 12)
  const image = `${testRegistry()}/${app}:image-${id12}`
  t.teardown(() => removeImage(docker, image))
  t.teardown(async () => {
    for (const info of await runContainers(app))
      await docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => {})
  })
  const built = await c.call('POST', `/v1/apps/${app}/builds`, { token: alice, body: { image: source } })
  if (built.status !== 201) throw new Error(`build ${app}: ${built.status} ${JSON.stringify(built.body)}`)
  return { c, app, alice, carol, image }
}

t.test('run: output, exit codes, env, stdin, a TTY, and no container left', async (t) => {
  const { c, app, alice, carol, image } = await world(t)

  const hi = await run(c, alice, app, { command: ['echo', 'hi'] })
  t.same(hi, { stdout: 'hi\n', stderr: '', exit: 0, started: { container: hi.started?.container, release: 2 } }, 'echo hi: its output, exit 0')
  t.match(hi.started?.container, /^[0-9a-f]{12}$/)

  const both = await run(c, alice, app, { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] })
  t.equal(both.stdout, 'out\n', 'stdout apart')
  t.equal(both.stderr, 'err\n', 'stderr apart')
  t.equal(both.exit, 3, 'the exit code')

  const set = await c.call('POST', `/v1/apps/${app}/config`, { token: alice, body: { values: { FOO: 'bar baz' } } })
  t.equal(set.status, 200, JSON.stringify(set.body))
  const env = await run(c, alice, app, { command: ['sh', '-c', 'echo "$FOO|$PORT|$WHARF_APP|$WHARF_RELEASE|$EXTRA"'], env: { EXTRA: 'x' } })
  t.same([env.stdout, env.exit], [`bar baz|5000|${app}|v3|x\n`, 0], 'the config, PORT, WHARF_APP, WHARF_RELEASE and -e values')

  const piped = await run(c, alice, app, { command: ['sh', '-c', 'tr a-z A-Z; echo done'], stdin: true }, (ws) => {
    ws.send(Buffer.from('hello\n'))
    ws.send(JSON.stringify({ type: 'eof' }))
  })
  t.same([piped.stdout, piped.exit], ['HELLO\ndone\n', 0], 'stdin without a TTY, closed by eof')

  const tty = await run(c, alice, app, { command: ['sh'], stdin: true, tty: true, cols: 100, rows: 30 }, (ws) => {
    ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }))
    ws.send(Buffer.from('echo hel""lo\nexit 5\n'))
  })
  t.match(tty.stdout, /\/ # /, 'a shell prompt: stdin is a terminal')
  t.match(tty.stdout, /\nhello\r?\n/, 'the TTY output')
  t.equal(tty.stderr, '', 'one stream with a TTY')
  t.equal(tty.exit, 5, 'the exit code of the shell')

  // A client that leaves mid-run: the container is killed and removed.
  const left = await run(c, alice, app, { command: ['sleep', '100'] }, (ws, out) => {
    const check = setInterval(() => {
      if (out.started) {
        clearInterval(check)
        ws.close()
      }
    }, 20)
  })
  t.ok(left.started, 'it started')
  t.equal(left.exit, undefined, 'no exit code: the client left')
  let remaining = await runContainers(app)
  for (let i = 0; i < 100 && remaining.length; i++) {
    await sleep(100)
    remaining = await runContainers(app)
  }
  t.same(remaining, [], 'no one-off container is left after a disconnect')

  // The image gone from the engine: pulled back from the registry.
  await removeImage(docker, image)
  const pulled = await run(c, alice, app, { command: ['cat', '/stamp'] })
  t.same([pulled.exit, pulled.stderr], [0, ''], 'runs after pulling the image from the registry')
  t.match(pulled.stdout, /^\d+\n$/)

  // Refusals.
  const none = await run(c, alice, app, { command: [] })
  t.equal(none.error?.code, 'WHARF_INVALID', 'no command')
  t.match(none.error?.message, /no command/)
  const bad = await run(c, alice, app, { command: ['true'], env: { 'NOT-A-KEY': 'x' } })
  t.equal(bad.error?.code, 'WHARF_INVALID', 'a bad env key')
  const stranger = await run(c, carol, app, { command: ['true'] })
  t.same([stranger.status, stranger.error?.code], [404, 'WHARF_NOT_FOUND'], 'a stranger: 404')
  const anonymous = await run(c, undefined, app, { command: ['true'] })
  t.same([anonymous.status, anonymous.error?.code], [401, 'WHARF_UNAUTHORIZED'], 'no token: 401 before the upgrade')
  const plain = await c.call('GET', `/v1/apps/${app}/run`, { token: alice })
  t.same([plain.status, plain.body.code], [400, 'WHARF_INVALID'], 'plain HTTP: refused')

  const missing = await run(c, alice, app, { command: ['sh', '-c', 'exit 127'] })
  t.equal(missing.exit, 127, 'exit codes above 1 pass through')
  const unknownCmd = await run(c, alice, app, { command: ['no-such-command'] })
  t.equal(unknownCmd.error?.code, 'WHARF_INVALID', 'an unknown command: a clear error')
  t.match(unknownCmd.error?.message, /no-such-command/)

  t.same(await runContainers(app), [], 'no one-off container is left')
})

t.test('run: an app with no release with an image yet', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-run-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  const app = `run-${uniqueName('n')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })).status, 201)
  const res = await run(c, alice, app, { command: ['echo', 'hi'] })
  t.equal(res.status, 409)
  t.equal(res.error?.code, 'WHARF_CONFLICT')
  t.match(res.error?.message, /push first: git push wharf main/)
  const nope = await run(c, alice, 'no-such-app', { command: ['echo', 'hi'] })
  t.same([nope.status, nope.error?.code], [404, 'WHARF_NOT_FOUND'], 'no such app')
})
