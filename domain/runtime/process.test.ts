import t from 'tap'
import { DEFAULT_PORT, envList, memoryBytes, processEnv } from './process.js'

t.test('limits', (t) => {
  t.equal(memoryBytes('512M'), 512 * 1024 * 1024)
  t.equal(memoryBytes('1G'), 1024 ** 3)
  t.equal(memoryBytes('65536'), 65536)
  t.equal(memoryBytes('lots'), undefined)
  t.end()
})

t.test('the environment of a process: the config, then the platform variables over it', (t) => {
  const release = { app: 'shop', version: 3, port: 8000, config: { GREETING: 'hi', PORT: '1', WHARF_APP: 'other' } }
  t.same(processEnv(release, 'worker'), { GREETING: 'hi', PORT: '8000', WHARF_APP: 'shop', WHARF_RELEASE: 'v3', WHARF_PROCESS_TYPE: 'worker' })
  t.equal(processEnv({ ...release, port: undefined }, 'web').PORT, String(DEFAULT_PORT), 'the default port when the release names none')
  t.end()
})

t.test('an environment as Docker takes it: K=V sorted by key', (t) => {
  t.same(envList({ b: '2', a: '1=x', C: '' }), ['C=', 'a=1=x', 'b=2'])
  t.same(envList({}), [])
  t.end()
})
