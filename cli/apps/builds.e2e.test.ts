/**
 * The builds commands as a user runs them: `node bin/wharf` (compiled: `npx tsc -p .` first) with a
 * HOME of its own and WHARF_URL / WHARF_TOKEN, against a controller of its own that has the test
 * Docker engine and registry.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { uniqueName } from '../../test/harness.js'
import { buildTestImage, removeImage, testDocker, testRegistry } from '../../services/builder/testing.js'
import { registerAndLogin, startEngineController } from '../../services/controller/testing.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'

t.test('builds:create, builds:list and builds:info through bin/wharf', async (t) => {
  requireBuilt()
  const docker = testDocker()
  const home = mkdtempSync(join(tmpdir(), 'wharf-builds-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startEngineController(t, { WHARF_HOME: home })
  await registerAndLogin(c, 'root')
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  const bob = cli(t, c.url, await registerAndLogin(c, 'bob'))
  const app = `web-${uniqueName('e')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-12)}`
  await ok(t, alice.run(['apps:create', app, '--no-remote']), 'apps:create')

  t.equal((await ok(t, alice.run(['builds:list', '-a', app]), 'builds:list with none')).stdout, 'No builds.\n')
  await fails(t, alice.run(['builds:info', '-a', app]), 'WHARF_NOT_FOUND', 'builds:info with none')

  const source = await buildTestImage(t, docker, `FROM busybox\nEXPOSE 8080\nRUN echo ${Date.now()} > /stamp\nCMD ["httpd", "-f", "-p", "8080"]\n`)
  const id12 = (await docker.getImage(source).inspect()).Id.replace(/^sha256:/, '').slice(0, 12)
  const pushed = `${testRegistry()}/${app}:image-${id12}`
  t.teardown(() => removeImage(docker, pushed))
  const created = await ok(
    t,
    // No scheduler runs here: nothing would deploy, so the CLI is told not to wait for it.
    alice.run(['builds:create', source, '-a', app, '--procfile', 'web: httpd -f -p $PORT', '--procfile', 'worker: sleep 1000', '--no-wait']),
    'builds:create',
  )
  t.match(created.stdout, `\npushed ${pushed} (sha256:`, 'says what it pushed')
  t.match(created.stdout, new RegExp(`^importing ${source}\\.\\.\\.\\n`), 'progress first')
  t.match(created.stdout, new RegExp(`\\nReleased v2 of ${app}: http://${app}\\.[^:\\s]+:\\d+\\n$`), 'then the release and the URL')

  const list = await ok(t, alice.run(['builds:list', '-a', app]), 'builds:list')
  t.match(list.stdout, /^ID\s+STATUS\s+STACK\s+SOURCE\s+BY\s+RELEASE\s+AGE\n/)
  t.match(list.stdout, new RegExp(`\\n[0-9a-f]{8}-[0-9a-f]{4}\\s+succeeded\\s+image\\s+${source}\\s+alice\\s+v2\\s+\\d+s ago\\n$`))
  const [build] = JSON.parse((await ok(t, alice.run(['builds:list', '-a', app, '--json']), 'builds:list --json')).stdout).builds
  t.match(build, { status: 'succeeded', kind: 'image', source, release: 2, port: 8080, procfile: { web: 'httpd -f -p $PORT', worker: 'sleep 1000' } })

  const info = await ok(t, alice.run(['builds:info', '-a', app]), 'builds:info')
  t.match(info.stdout, new RegExp(`^=== build ${build.id}\\nstatus:\\s+succeeded\\nfrom:\\s+image ${source}\\n`))
  t.match(info.stdout, /\nrelease:\s+v2\n/)
  t.match(info.stdout, /\nprocfile:\n {2}web: httpd -f -p \$PORT\n {2}worker: sleep 1000\n/)
  t.match(info.stdout, new RegExp(`\\n=== output\\nimporting ${source}\\.\\.\\.\\n[\\s\\S]*pushed ${pushed}`))
  t.match((await ok(t, alice.run(['builds:info', build.id.slice(0, 13), '-a', app]), 'builds:info <short id>')).stdout, `=== build ${build.id}\n`)
  t.equal(JSON.parse((await ok(t, alice.run(['builds:info', 'latest', '-a', app, '--json']), 'builds:info --json')).stdout).id, build.id)

  const again = JSON.parse(
    (await ok(t, alice.run(['builds:create', source, '-a', app, '--port', '9000', '--json', '--no-wait']), 'builds:create --json')).stdout,
  )
  t.match(again, { release: 3, image: pushed, port: 9000, digest: /^sha256:/ })

  // Failures: one line with the code.
  const missing = `${uniqueName('nope').toLowerCase()}:1`
  await fails(t, alice.run(['builds:create', missing, '-a', app]), 'WHARF_NOT_FOUND', 'builds:create of an unknown image')
  t.match(
    (await ok(t, alice.run(['builds:list', '-a', app]), 'builds:list after a failure')).stdout,
    new RegExp(`\\n[0-9a-f-]{13}\\s+failed\\s+image\\s+${missing}\\s+alice\\s+-\\s+`),
  )
  t.match((await ok(t, alice.run(['builds:info', '-a', app]), 'builds:info of the failure')).stdout, /^=== build .*\nstatus:\s+failed: no image /)
  await fails(t, alice.run(['builds:create', source, '-a', app, '--procfile', 'Web: x']), 'WHARF_INVALID', 'a bad Procfile line')
  await fails(t, alice.run(['builds:create', source, '-a', app, '--procfile', 'web: a', '--procfile', 'web: b']), 'WHARF_INVALID', 'a type twice')
  await fails(t, alice.run(['builds:create', source, '-a', app, '--port', '0']), 'WHARF_INVALID', 'a bad port')
  await fails(t, alice.run(['builds:create', 'Not An Image', '-a', app]), 'WHARF_INVALID', 'a bad image reference')
  await fails(t, bob.run(['builds:create', source, '-a', app]), 'WHARF_NOT_FOUND', "someone else's app")
  await fails(t, bob.run(['builds:list', '-a', app]), 'WHARF_NOT_FOUND', "someone else's builds")
  await fails(t, alice.run(['builds:list']), 'WHARF_INVALID', 'no app outside a checkout')
  t.equal(JSON.parse((await alice.run(['releases:list', '-a', app, '--json'])).stdout).releases.length, 3, 'the failures released nothing')
})
