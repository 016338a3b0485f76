import t from 'tap'
import { WharfError } from '../../core/errors.js'
import { parseProcfile } from './procfile.js'

const invalid = (message: RegExp) => ({ code: 'WHARF_INVALID', message })

t.test('types and commands, with comments, blank lines and CRLF skipped', async (t) => {
  const text = '# the app\r\nweb: node server.js --port $PORT\r\n\r\n  worker:node worker.js  \r\nclock_2-x: sh -c "a: b"\r\n'
  t.same(parseProcfile(text), { web: 'node server.js --port $PORT', worker: 'node worker.js', 'clock_2-x': 'sh -c "a: b"' })
})

t.test('an empty Procfile has no types', async (t) => {
  t.same(parseProcfile(''), {})
  t.same(parseProcfile('\n# nothing\n'), {})
})

t.test('a line without a colon names the line', async (t) => {
  t.throws(() => parseProcfile('web: a\n\nnode worker.js\n'), invalid(/^Procfile line 3: expected "type: command"/))
  t.throws(() => parseProcfile('node worker.js'), WharfError)
})

t.test('a process type that is not lower-case letters, digits, _ or - is refused', async (t) => {
  for (const type of ['Web', '1web', '_web', 'web.1', 'we b', '', 'w'.repeat(31)]) {
    t.throws(() => parseProcfile(`${type}: run`), invalid(/^Procfile line 1: process type .* must be 1-30 lower-case letters/), JSON.stringify(type))
  }
  t.same(parseProcfile(`${'w'.repeat(30)}: run`), { ['w'.repeat(30)]: 'run' }, '30 characters is fine')
})

t.test('an empty command is refused', async (t) => {
  t.throws(() => parseProcfile('web: a\nworker:   \n'), invalid(/^Procfile line 2: process type worker has no command$/))
})

t.test('a command longer than 4096 characters is refused', async (t) => {
  t.same(parseProcfile(`web: ${'x'.repeat(4096)}`).web!.length, 4096)
  t.throws(() => parseProcfile(`web: ${'x'.repeat(4097)}`), invalid(/^Procfile line 1: the command of web is 4097 characters; at most 4096$/))
})

t.test('a type declared twice is refused', async (t) => {
  t.throws(() => parseProcfile('web: a\n# again\nweb: b\n'), invalid(/^Procfile line 3: process type web is declared twice$/))
})

t.test('at most 20 types', async (t) => {
  const lines = Array.from({ length: 20 }, (_, i) => `p${i}: run`)
  t.equal(Object.keys(parseProcfile(lines.join('\n'))).length, 20)
  t.throws(() => parseProcfile([...lines, 'p20: run'].join('\n')), invalid(/^Procfile line 21: more than 20 process types$/))
})
