/**
 * Logspout against the real Docker engine and NATS: containers of a test namespace print numbered
 * lines; every line reaches the log stream once, in order, with its app, process and stream, across a
 * logspout restart, dropped engine connections, and a container that exits while logspout is down.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createLogger } from '../../core/log.js'
import { uniqueName, until } from '../../test/harness.js'
import { testDocker, testEngine } from '../builder/testing.js'
import { Logspout } from './logspout.js'
import { runLabelled, streamLines, testLogStream } from './testing.js'

const docker = testDocker()
const engine = testEngine()
const log = createLogger({ level: process.env.WHARF_TEST_LOG_LEVEL ?? 'silent' })

/** The numbers of `n <i>` lines, in order. */
const numbers = (texts: string[]) => texts.filter((x) => x.startsWith('n ')).map((x) => Number(x.slice(2)))
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i)

t.test('every line once, in order, across restarts and dropped connections', async (t) => {
  const ns = uniqueName('spout').toLowerCase()
  const logs = await testLogStream(t, ns)
  const start = () => Logspout.start({ docker: engine, logs, log, namespace: ns, reconnectMs: 100 })
  let spout = await start()
  t.teardown(() => spout.stop())

  // Lines from the start: 1..300 at once (stdout and stderr), then one every 10 ms up to 1000.
  await runLabelled(
    t,
    docker,
    ns,
    'shop',
    'i=1; while [ $i -le 1000 ]; do if [ $i -le 300 ] || true; then echo "n $i"; fi; [ $((i % 7)) -eq 0 ] && echo "e $i" >&2; [ $i -gt 300 ] && usleep 10000; i=$((i+1)); done; sleep 60',
    { type: 'worker', release: 4 },
  )
  const lines = () => streamLines(logs, 'shop')
  await until('the first lines', async () => numbers((await lines()).map((l) => l.text)).length >= 350)

  // A restart of logspout mid-stream, and a dropped engine connection.
  await spout.stop()
  await sleep(300)
  spout = await start()
  await until('more lines after the restart', async () => numbers((await lines()).map((l) => l.text)).length >= 600)
  spout.dropEngine()
  await until('all the lines', async () => numbers((await lines()).map((l) => l.text)).length >= 1000)
  await spout.settled()

  const all = await lines()
  t.same(numbers(all.map((l) => l.text)), range(1, 1000), 'stdout: 1..1000, each once, in order')
  const errs = all.filter((l) => l.text.startsWith('e '))
  t.same(
    errs.map((l) => Number(l.text.slice(2))),
    range(1, 142).map((i) => i * 7),
    'stderr too',
  )
  t.ok(
    errs.every((l) => l.stream === 'stderr'),
    'stderr lines say so',
  )
  t.match(
    all.find((l) => l.text === 'n 1'),
    {
      app: 'shop',
      source: 'app',
      type: 'worker',
      release: 4,
      stream: 'stdout',
      origin: /^[0-9a-f]{12}$/,
      time: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/,
    },
  )
  t.ok(spout.health().ok, 'healthy')
})

t.test('a container that exits while logspout is down is read to its end; long and binary lines', async (t) => {
  const ns = uniqueName('spout').toLowerCase()
  const logs = await testLogStream(t, ns)
  let spout = await Logspout.start({ docker: engine, logs, log, namespace: ns, reconnectMs: 100 })
  const c = await runLabelled(
    t,
    docker,
    ns,
    'api',
    'echo first; sleep 2; echo second; head -c 40000 /dev/zero | tr "\\0" x; echo; printf "bin\\001\\377\\n"; printf "no newline at the end"',
  )
  await until('the first line', async () => (await streamLines(logs, 'api')).length >= 1)
  await spout.stop()
  await c.wait()
  spout = await Logspout.start({ docker: engine, logs, log, namespace: ns, reconnectMs: 100 })
  t.teardown(() => spout.stop())
  const all = await until('the rest', async () => {
    const l = await streamLines(logs, 'api')
    return l.length >= 5 ? l : undefined
  })
  await spout.settled()
  const texts = (await streamLines(logs, 'api')).map((l) => l.text)
  t.equal(texts.length, 5, 'each line once')
  t.same(texts.slice(0, 2), ['first', 'second'])
  t.equal(texts[2], `${'x'.repeat(16384)} [truncated ${40000 - 16384} bytes]`, 'a 40,000-byte line: cut at 16 KiB with a marker')
  t.equal(texts[3], 'bin\\x01\ufffd', 'binary escaped')
  t.equal(texts[4], 'no newline at the end', 'the last line without LF')
  t.equal(all[0]!.type, 'web')
})

t.test('a flood from one app cannot starve another: its rate is limited, and nothing of it is lost', async (t) => {
  const ns = uniqueName('spout').toLowerCase()
  const logs = await testLogStream(t, ns)
  const spout = await Logspout.start({ docker: engine, logs, log, namespace: ns, reconnectMs: 100, appRate: 2_000 })
  t.teardown(() => spout.stop())
  await runLabelled(t, docker, ns, 'loud', 'seq 1 20000 | sed "s/^/n /"; sleep 60')
  await runLabelled(t, docker, ns, 'quiet', 'sleep 1; i=1; while [ $i -le 10 ]; do echo "n $i"; usleep 100000; i=$((i+1)); done; sleep 60')
  await until('every line of the quiet app', async () => numbers((await streamLines(logs, 'quiet')).map((l) => l.text)).length === 10)
  const loudSoFar = numbers((await streamLines(logs, 'loud')).map((l) => l.text)).length
  t.ok(loudSoFar < 20_000, `the quiet app got through while the loud one was held to its rate (${loudSoFar} of 20000 so far)`)
  await until('every line of the loud app', async () => numbers((await streamLines(logs, 'loud')).map((l) => l.text)).length === 20_000, 60_000)
  t.same(numbers((await streamLines(logs, 'loud')).map((l) => l.text)), range(1, 20_000), 'the loud app lost nothing: it only waited')
})
