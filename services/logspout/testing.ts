/**
 * For integration tests: containers of a test namespace (plain containers with Wharf's labels, so
 * logspout follows them as it does Swarm tasks), removed in teardown; and a log stream of the
 * namespace's own, deleted in teardown.
 */
import type Docker from 'dockerode'
import type { Test } from 'tap'
import { LogSubjects } from '../../events/index.js'
import { LogStream, linesOf, type LogLine } from '../../logs/index.js'
import { testNatsUrl } from '../../test/harness.js'
import { LABELS } from '../../domain/runtime/labels.js'

/** Starts `busybox sh -c <script>` labelled as process `type` of `app` in `namespace`; removed in teardown. */
export async function runLabelled(
  t: Test,
  docker: Docker,
  namespace: string,
  app: string,
  script: string,
  opts: { type?: string; release?: number } = {},
): Promise<Docker.Container> {
  const c = await docker.createContainer({
    Image: 'busybox:latest',
    Cmd: ['sh', '-c', script],
    Labels: {
      [LABELS.namespace]: namespace,
      [LABELS.app]: app,
      [LABELS.type]: opts.type ?? 'web',
      [LABELS.release]: String(opts.release ?? 1),
      'wharf.test': 'true',
    },
    HostConfig: { LogConfig: { Type: 'json-file', Config: {} } },
  })
  t.teardown(() => c.remove({ force: true }).catch(() => {}))
  await c.start()
  return c
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
