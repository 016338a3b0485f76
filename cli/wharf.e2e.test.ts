import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const bin = new URL('../bin/wharf', import.meta.url).pathname
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('wharf --version prints the package version', async (t) => {
  const { stdout } = await run(bin, ['--version'])
  t.equal(stdout.trim(), version)
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
