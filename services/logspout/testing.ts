/**
 * For integration tests: containers of a test namespace (Swarm services of one task with Wharf's
 * labels, as the scheduler makes them), removed in teardown; and a log stream of the
 * namespace's own, deleted in teardown.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type Docker from 'dockerode'
import type { Test } from 'tap'
import { LogSubjects } from '../../events/index.js'
import { LogStream, linesOf, type LogLine } from '../../logs/index.js'
import { testNatsUrl } from '../../test/harness.js'
import { processLabels } from '../../domain/runtime/labels.js'

/**
 * Starts `sh -c <script>` (in busybox, or `opts.image`) as process `type` of `app` in `namespace`: a Swarm service of one
 * task, as the scheduler makes them (logspout follows only containers a task of the platform made),
 * never restarted; answers its container once the task names it. The service is removed in teardown.
 */
export async function runLabelled(
  t: Test,
  docker: Docker,
  namespace: string,
  app: string,
  script: string,
  opts: { type?: string; release?: number; image?: string } = {},
): Promise<Docker.Container> {
  const type = opts.type ?? 'web'
  const labels = processLabels(namespace, app, type, opts.release ?? 1)
  const created = (await docker.createService({
    Name: `${namespace}-${app}-${type}-${Math.random().toString(36).slice(2, 8)}`.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 63),
    Labels: { ...labels, 'wharf.test': 'true' },
    TaskTemplate: {
      ContainerSpec: { Image: opts.image ?? 'busybox:latest', Command: ['sh', '-c', script], Labels: labels, StopGracePeriod: 1_000_000_000 },
      RestartPolicy: { Condition: 'none' },
      LogDriver: { Name: 'json-file', Options: {} },
    },
    Mode: { Replicated: { Replicas: 1 } },
  } as Docker.CreateServiceOptions)) as { id?: string; ID?: string }
  const service = docker.getService(created.id ?? created.ID!)
  t.teardown(() => service.remove().catch(() => {}))
  const serviceId = created.id ?? created.ID!
  for (let i = 0; i < 300; i++) {
    const tasks = (await docker.listTasks({ filters: { service: [serviceId] } })) as { Status?: { ContainerStatus?: { ContainerID?: string } } }[]
    const id = tasks.find((x) => x.Status?.ContainerStatus?.ContainerID)?.Status?.ContainerStatus?.ContainerID
    if (id) return docker.getContainer(id)
    await sleep(100)
  }
  throw new Error(`the task of ${app}/${type} got no container in 30 s`)
}

/** A log stream of `namespace` (created), deleted and closed in teardown. */
export async function testLogStream(t: Test, namespace: string): Promise<LogStream> {
  const logs = await LogStream.connect({ servers: testNatsUrl(), subjects: new LogSubjects(namespace) })
  await logs.ensure({ maxAgeMs: 3_600_000, maxBytes: 256 * 1024 * 1024 })
  t.teardown(async () => {
    await logs.destroy()
    await logs.close()
  })
  return logs
}

/** Every line of `app` the stream holds now, in stream order. */
export async function streamLines(logs: LogStream, app: string): Promise<LogLine[]> {
  const out: LogLine[] = []
  for await (const b of logs.read(logs.subjects.appFilter(app))) out.push(...linesOf(b.batch, b.seq))
  return out
}
