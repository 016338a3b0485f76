import t from 'tap'
import { DRAIN_SIGNAL, LABELS } from '../../domain/runtime/labels.js'
import { desiredServices, diff, healthPath, serviceName, servicePrefix, specHash, type ActualService, type ReleaseView } from './model.js'

const release = (over: Partial<ReleaseView> = {}): ReleaseView => ({
  app: 'shop',
  version: 4,
  image: '127.0.0.1:5000/shop:git-abc1234',
  digest: `sha256:${'a'.repeat(64)}`,
  procfile: { web: 'httpd -f -p $PORT', worker: 'sleep 1000' },
  port: 8000,
  config: { GREETING: 'hi' },
  limits: { memory: { web: '256M' }, cpu: { worker: 0.5 } },
  ...over,
})

const actualOf = (d: ReturnType<typeof desiredServices>[number], over: Partial<ActualService> = {}): ActualService => ({
  id: `id-${d.name}`,
  name: d.name,
  app: d.app,
  type: d.type,
  release: d.release,
  hash: d.hash,
  failedHash: undefined,
  restart: undefined,
  replicas: d.replicas,
  ...over,
})

t.test('names: wharf-<app>-<type> for the platform, the namespace (or a hash of it) otherwise', (t) => {
  t.equal(serviceName('wharf', 'shop', 'web'), 'wharf-shop-web')
  t.equal(serviceName('staging', 'shop', 'clock_in'), 'staging-shop-clock-in')
  t.match(servicePrefix('ctl_123456_mi0x8k2a_1a2b3'), /^w[0-9a-f]{10}$/, 'a long test namespace: a hash')
  t.not(servicePrefix('ctl_123456_mi0x8k2a_1a2b3'), servicePrefix('ctl_123456_mi0x8k2a_1a2b4'))
  t.end()
})

t.test('placement settings become Swarm constraints and spread preferences; none leaves the spec as it was', (t) => {
  const plain = desiredServices('wharf', release(), { web: 1 })[0]!
  t.notOk(plain.spec.TaskTemplate?.Placement, 'no placement: none in the spec')
  const config = { GREETING: 'hi', WHARF_PLACEMENT: 'node.role!=manager', WHARF_PLACEMENT_WEB: 'node.labels.zone == a', WHARF_PLACEMENT_SPREAD: 'zone' }
  const [web, worker] = desiredServices('wharf', release({ config }), { web: 3, worker: 1 })
  t.strictSame(web!.spec.TaskTemplate?.Placement, { Constraints: ['node.labels.zone==a'], Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] })
  t.strictSame(worker!.spec.TaskTemplate?.Placement?.Constraints, ['node.role!=manager'])
  t.not(
    web!.hash,
    desiredServices('wharf', release({ config: { ...config, WHARF_PLACEMENT_WEB: 'node.labels.zone==b' } }), { web: 3 })[0]!.hash,
    'a new placement is a new spec',
  )
  t.end()
})

t.test('one service per process type with a quantity, web publishes its port in host mode', (t) => {
  const out = desiredServices('wharf', release(), { web: 2, worker: 1, clock: 3 })
  t.same(
    out.map((d) => [d.name, d.replicas]),
    [
      ['wharf-shop-web', 2],
      ['wharf-shop-worker', 1],
    ],
    'types outside the release do not run',
  )
  const web = out[0]!.spec as any
  t.equal(web.TaskTemplate.ContainerSpec.Image, `127.0.0.1:5000/shop:git-abc1234@sha256:${'a'.repeat(64)}`, 'pinned by digest')
  t.same(web.TaskTemplate.ContainerSpec.Command, ['sh', '-c', 'httpd -f -p $PORT'])
  t.same(web.TaskTemplate.ContainerSpec.Env, ['GREETING=hi', 'PORT=8000', 'WHARF_APP=shop', 'WHARF_PROCESS_TYPE=web', 'WHARF_RELEASE=v4'])
  t.same(web.Labels, { [LABELS.namespace]: 'wharf', [LABELS.app]: 'shop', [LABELS.type]: 'web', [LABELS.release]: '4' })
  t.same(
    web.TaskTemplate.ContainerSpec.Labels,
    { ...web.Labels, [LABELS.drain]: '5000', [LABELS.drainMax]: '30000' },
    'containers carry the labels too, web ones its drain time and longest drain',
  )
  t.same(web.EndpointSpec.Ports, [{ Protocol: 'tcp', TargetPort: 8000, PublishMode: 'host' }], 'no PublishedPort: a free host port per task')
  t.same(web.TaskTemplate.Resources.Limits, { MemoryBytes: 256 * 1024 * 1024 })
  t.equal(web.TaskTemplate.RestartPolicy.Condition, 'any', 'restarted whatever its exit status, as Heroku does')
  t.match(web.UpdateConfig, { Parallelism: 0, Order: 'start-first', FailureAction: 'rollback', Monitor: 5e9 }, 'all new tasks start together')
  t.equal(web.TaskTemplate.ContainerSpec.StopSignal, DRAIN_SIGNAL, 'a stop first drains (SIGTERM after the drain time)')
  t.equal(web.TaskTemplate.ContainerSpec.StopGracePeriod, 40e9, 'longest drain and grace period')
  const short = desiredServices('wharf', release(), { web: 1 }, { drainMs: 8_000, drainMaxMs: 2_000 })[0]!.spec as any
  t.equal(short.TaskTemplate.ContainerSpec.Labels[LABELS.drainMax], '8000', 'a longest drain shorter than the drain time is the drain time')
  t.equal(short.TaskTemplate.ContainerSpec.StopGracePeriod, 18e9)
  t.notOk(web.TaskTemplate.ContainerSpec.Healthcheck, 'no HEALTHCHECK_URL: the image decides')
  const worker = out[1]!.spec as any
  t.notOk(worker.TaskTemplate.ContainerSpec.StopSignal, 'a worker gets SIGTERM at once')
  t.equal(worker.TaskTemplate.ContainerSpec.StopGracePeriod, 10e9)
  t.notOk(worker.TaskTemplate.ContainerSpec.Labels[LABELS.drain])
  t.notOk(worker.TaskTemplate.ContainerSpec.Labels[LABELS.drainMax])
  const [noDrain] = desiredServices('wharf', release(), { web: 1 }, { drainMs: 0 })
  t.notOk((noDrain!.spec as any).TaskTemplate.ContainerSpec.StopSignal, 'WHARF_DRAIN_TIME=0s: no drain')
  t.same(worker.EndpointSpec.Ports, [], 'a worker publishes nothing')
  t.same(worker.TaskTemplate.Resources.Limits, { NanoCPUs: 5e8 })
  t.end()
})

t.test('no Procfile: web runs the image CMD; no release with an image: nothing', (t) => {
  const [web] = desiredServices('wharf', release({ procfile: {}, port: undefined, digest: undefined }), { web: 1 })
  t.notOk((web!.spec as any).TaskTemplate.ContainerSpec.Command)
  t.equal((web!.spec as any).TaskTemplate.ContainerSpec.Image, '127.0.0.1:5000/shop:git-abc1234')
  t.same((web!.spec as any).EndpointSpec.Ports[0].TargetPort, 5000, 'default port')
  t.same(desiredServices('wharf', undefined, { web: 1 }), [])
  t.same(desiredServices('wharf', release(), { web: 0 }), [], 'scaled to 0: no service')
  t.end()
})

t.test('HEALTHCHECK_URL becomes a wget probe of the container itself', (t) => {
  const [web] = desiredServices('wharf', release({ config: { HEALTHCHECK_URL: '/healthz' } }), { web: 1 })
  t.same((web!.spec as any).TaskTemplate.ContainerSpec.Healthcheck.Test, ['CMD-SHELL', 'wget -q -O /dev/null "http://127.0.0.1:$PORT/healthz" || exit 1'])
  t.equal(healthPath('http://example.com/up?x=1'), '/up?x=1')
  t.equal(healthPath('/a"; rm -rf /'), undefined, 'nothing that would break out of the shell word')
  t.equal(healthPath(''), undefined)
  t.end()
})

t.test('the spec hash: stable, and changed by anything that runs differently', (t) => {
  const a = desiredServices('wharf', release(), { web: 1 })[0]!
  t.equal(a.hash, desiredServices('wharf', release(), { web: 1 })[0]!.hash)
  t.equal(a.hash, specHash(JSON.parse(JSON.stringify(a.spec))), 'independent of key order round trips')
  for (const [what, r, f] of [
    ['config', release({ config: { GREETING: 'hello' } }), { web: 1 }],
    ['image', release({ image: 'x', digest: undefined }), { web: 1 }],
    ['replicas', release(), { web: 2 }],
    ['limits', release({ limits: { memory: { web: '512M' }, cpu: {} } }), { web: 1 }],
    ['release', release({ version: 5 }), { web: 1 }],
  ] as const) {
    t.not(desiredServices('wharf', r, f)[0]!.hash, a.hash, what)
  }
  t.end()
})

t.test('diff: create missing, update changed, remove unwanted, leave equal and failed specs alone', (t) => {
  const [web, worker] = desiredServices('wharf', release(), { web: 1, worker: 1 })
  t.same(
    diff([web!, worker!], []).map((c) => c.kind),
    ['create', 'create'],
  )
  t.same(diff([web!, worker!], [actualOf(web!), actualOf(worker!)]), [], 'nothing to do')
  t.same(
    diff([web!], [actualOf(web!, { hash: 'old' }), actualOf(worker!)]).map((c) => c.kind),
    ['update', 'remove'],
  )
  t.same(diff([web!], [actualOf(web!, { hash: 'old', failedHash: web!.hash })]), [], 'a spec that failed and rolled back is not tried again')
  t.same(
    diff([], [actualOf(web!)]).map((c) => c.kind),
    ['remove'],
  )
  t.end()
})
