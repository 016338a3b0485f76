import t from 'tap'
import { demuxer, parseControl, parseStart, runContainerSpec, runEnv } from './run.js'
import type { ReleaseView } from './queries.js'

const release: ReleaseView & { image: string } = {
  app: 'shop',
  version: 7,
  image: '127.0.0.1:5000/shop:git-abc',
  digest: null,
  port: 8080,
  procfile: {},
  configKeys: ['FOO', 'PORT'],
  configHash: 'x',
  limits: { memory: { web: '512M', worker: '1G' }, cpu: { worker: 0.5 } },
  by: 'alice',
  summary: '',
  build: null,
  rollbackOf: null,
  created: '2026-01-01T00:00:00.000Z',
  config: { FOO: 'bar', PORT: '1' },
}

t.test('runEnv: config, then the platform values, then -e over all', async (t) => {
  t.same(runEnv(release), ['FOO=bar', 'PORT=8080', 'WHARF_APP=shop', 'WHARF_PROCESS_TYPE=web', 'WHARF_RELEASE=v7'])
  t.same(runEnv({ ...release, port: null }, { FOO: 'override', X: '1' }), [
    'FOO=override',
    'PORT=5000',
    'WHARF_APP=shop',
    'WHARF_PROCESS_TYPE=web',
    'WHARF_RELEASE=v7',
    'X=1',
  ])
})

t.test('runContainerSpec: the image, the limits of the type, labels, bridge, removed on exit', async (t) => {
  const bounds = { pids: 256, memoryBytes: 768 * 1024 ** 2, cpus: 1 }
  const web = runContainerSpec(release, { type: 'start', command: ['echo', 'hi'] }, { run: 'req-1', user: 'alice' }, bounds)
  t.match(web, {
    Image: release.image,
    Cmd: ['echo', 'hi'],
    Tty: false,
    OpenStdin: false,
    Labels: { 'wharf.app': 'shop', 'wharf.run': 'req-1', 'wharf.release': '7', 'wharf.type': 'web', 'wharf.user': 'alice' },
    HostConfig: { AutoRemove: true, NetworkMode: 'bridge', Memory: 512 * 1024 ** 2, MemorySwap: 512 * 1024 ** 2, PidsLimit: 256 },
  })
  t.equal(web.HostConfig?.NanoCpus, 1e9, "the platform's CPU bound for web (it has none of its own)")
  t.equal(web.HostConfig?.PortBindings, undefined, 'no published ports')
  const worker = runContainerSpec(release, { type: 'start', command: ['sh'], processType: 'worker', tty: true, stdin: true }, { run: 'r', user: 'bob' }, bounds)
  t.match(
    worker,
    { Tty: true, OpenStdin: true, StdinOnce: true, HostConfig: { Memory: 768 * 1024 ** 2, NanoCpus: 500_000_000, PidsLimit: 256 } },
    "the platform's memory bound is lower than the app's 1 GiB",
  )
})

t.test('parseStart and parseControl', async (t) => {
  t.same(parseStart('{"type":"start","command":["ls","-l"],"tty":true}'), { type: 'start', command: ['ls', '-l'], tty: true })
  t.match(parseStart('{"type":"start","command":[]}'), /^no command/)
  t.match(parseStart('{"type":"start"}'), /^no command/)
  t.match(parseStart('nope'), /not JSON/)
  t.match(parseStart('{"type":"start","command":["x"],"env":{"A-B":"1"}}'), /not valid/)
  t.match(parseStart('{"type":"start","command":["x"],"processType":"Web"}'), /not valid/)
  t.same(parseControl('{"type":"resize","cols":80,"rows":24}'), { type: 'resize', cols: 80, rows: 24 })
  t.same(parseControl('{"type":"eof"}'), { type: 'eof' })
  t.equal(parseControl('{"type":"resize","cols":0,"rows":24}'), undefined)
  t.equal(parseControl('{'), undefined)
})

t.test('demuxer: frames split across chunks and several in one', async (t) => {
  const frame = (stream: number, text: string) => {
    const data = Buffer.from(text)
    const head = Buffer.alloc(8)
    head[0] = stream
    head.writeUInt32BE(data.length, 4)
    return Buffer.concat([head, data])
  }
  const got: [number, string][] = []
  const feed = demuxer((s, d) => got.push([s, d.toString()]))
  const all = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, '')])
  feed(all.subarray(0, 5))
  feed(all.subarray(5, 13))
  feed(all.subarray(13))
  t.same(got, [
    [1, 'out\n'],
    [2, 'err\n'],
    [1, ''],
  ])
})
