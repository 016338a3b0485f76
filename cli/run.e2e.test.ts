/**
 * `wharf run` as a user runs it: `node bin/wharf` (compiled: `npx tsc -p .` first) against a
 * controller of its own with the test Docker engine and registry.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { uniqueName } from '../test/harness.js'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../services/builder/testing.js'
import { registerAndLogin, startEngineController } from '../services/controller/testing.js'
import { cli, fails, ok, requireBuilt } from './testing.js'

t.test('wharf run through bin/wharf', async (t) => {
  requireBuilt()
  const docker = testDocker()
  const home = mkdtempSync(join(tmpdir(), 'wharf-run-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))
  const app = `run-${uniqueName('e')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  t.teardown(async () => {
    for (const info of await docker.listContainers({ all: true, filters: { label: [`wharf.app=${app}`, 'wharf.run'] } })) {
      await docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => {})
    }
  })
  await ok(t, alice.run(['apps:create', app, '--no-remote']), 'apps:create')

  const early = await fails(t, alice.run(['run', '-a', app, '--', 'echo', 'hi']), 'WHARF_CONFLICT', 'run before a release with an image')
  t.match(early.stderr, /push first: git push wharf main/)

  const source = await buildTestImage(t, docker, `FROM busybox\nRUN echo ${Date.now()} > /stamp\nCMD ["sleep", "1000"]\n`)
  const id12 = (await docker.getImage(source).inspect()).Id.replace(/^sha256:/, '').slice(0, 12)
  t.teardown(() => removeImage(docker, `${testRegistry()}/${app}:image-${id12}`))
  // No scheduler runs here: nothing would deploy, so the CLI is told not to wait for it.
  await ok(t, alice.run(['builds:create', source, '-a', app, '--no-wait']), 'builds:create')
  await ok(t, alice.run(['config:set', 'GREETING=hello there', '-a', app, '--no-wait']), 'config:set')

  const hi = await ok(t, alice.run(['run', '-a', app, '--', 'echo', 'hi']), 'run echo hi')
  t.same([hi.stdout, hi.stderr], ['hi\n', ''], 'prints hi, nothing else')

  const both = await alice.run(['run', '-a', app, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'])
  t.same([both.code, both.stdout, both.stderr], [3, 'out\n', 'err\n'], 'the exit code propagates; stdout and stderr apart')

  const env = await ok(t, alice.run(['run', '-a', app, '-e', 'EXTRA=1', '--', 'sh', '-c', 'echo "$GREETING $EXTRA $WHARF_APP"']), 'run with config and -e')
  t.equal(env.stdout, `hello there 1 ${app}\n`)

  await fails(t, alice.run(['run', '-a', app]), 'WHARF_INVALID', 'no command')
  await fails(t, alice.run(['run', '-a', app, '-e', 'NOEQUALS', '--', 'true']), 'WHARF_INVALID', 'a bad -e')
  await fails(t, alice.run(['run', '-a', app, '--type', 'Web', '--', 'true']), 'WHARF_INVALID', 'a bad process type')
  await fails(t, alice.run(['run', '-a', app, '--', 'no-such-command']), 'WHARF_INVALID', 'a command the image does not have')
  await fails(t, bob.run(['run', '-a', app, '--', 'true']), 'WHARF_NOT_FOUND', "someone else's app")
  await fails(t, alice.run(['run', '--', 'true']), 'WHARF_INVALID', 'no app outside a checkout')
  await fails(t, cli(t, 'http://127.0.0.1:1', 'x').run(['run', '-a', app, '--', 'true']), 'WHARF_UNAVAILABLE', 'no controller')
})
