import t from 'tap'
import type { Test } from 'tap'
import type Docker from 'dockerode'
import { dockerClient } from '../core/engine/docker.js'
import { detectStack, type RepoFiles } from '../services/builder/stack.js'
import { tarOf } from '../test/tar.js'

/** The base images infra/parts/docker.ts makes offline, and the Node build stack on top of them. */

const repo = (files: Record<string, string>): RepoFiles => ({ has: (p) => Object.hasOwn(files, p), read: (p) => files[p] })

interface BuildResult {
  /** The build's output, as the engine streamed it. */
  output: string
  error: string | undefined
}

/**
 * Builds `files` as image `tag`; the build's failure is returned, not thrown. The image, and the
 * untagged step images a failed build leaves behind, are removed when the test ends.
 */
async function build(t: Test, docker: Docker, tag: string, files: Record<string, string>, buildargs: Record<string, string> = {}): Promise<BuildResult> {
  const stream = await docker.buildImage(tarOf(files), { t: tag, labels: { 'wharf.test': 'true' }, buildargs, forcerm: true })
  const out = await new Promise<{ stream?: string; error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  )
  const output = out.map((o) => o.stream ?? '').join('')
  t.teardown(async () => {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => {})
    // Step images, newest first; a tagged one (the FROM image) is never touched.
    for (const id of [...output.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]!).reverse()) {
      const image = await docker
        .getImage(id)
        .inspect()
        .catch(() => undefined)
      if (image && (image.RepoTags ?? []).length === 0)
        await docker
          .getImage(id)
          .remove()
          .catch(() => {})
    }
  })
  return { output, error: out.find((o) => o.error)?.error }
}

/** The text of a log stream without a TTY: frames of an 8-byte header (stream, 0, 0, 0, size) then the bytes. */
function demux(raw: Buffer): string {
  const parts: Buffer[] = []
  for (let at = 0; at + 8 <= raw.length; at += 8 + raw.readUInt32BE(at + 4)) parts.push(raw.subarray(at + 8, at + 8 + raw.readUInt32BE(at + 4)))
  return Buffer.concat(parts).toString('utf8')
}

async function run(t: Test, docker: Docker, image: string): Promise<{ code: number; logs: string }> {
  const container = await docker.createContainer({ Image: image, Labels: { 'wharf.test': 'true' }, HostConfig: { NetworkMode: 'none' } })
  t.teardown(() => container.remove({ force: true }).catch(() => {}))
  await container.start()
  const exit = await container.wait()
  return { code: exit.StatusCode, logs: demux((await container.logs({ stdout: true, stderr: true })) as Buffer) }
}

const docker = dockerClient(process.env.WHARF_TEST_DOCKER_HOST!)
const tagFor = (what: string): string => `wharf-test-${what}:${process.pid}`

t.test('node:26 is made from the host Node, tagged with its full version too, and builds with node and npm', async (t) => {
  const base = await docker.getImage('node:26').inspect()
  const full = await docker.getImage(`node:${process.versions.node}`).inspect()
  t.equal(full.Id, base.Id, `node:${process.versions.node} is node:26`)
  t.same(base.Config.Cmd, ['node'])
  t.match(base.Config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'])

  const dockerfile = [
    'FROM node:26',
    `RUN node -e "if (process.version !== '${process.version}') process.exit(1); console.log('node-' + process.version)" > /node-version`,
    'RUN npm --version > /npm-version',
    // A local package, so npm install runs without the network.
    `RUN mkdir -p /dep /app && cd /dep && echo '{"name":"dep","version":"1.0.0"}' > package.json && echo 'module.exports = 42' > index.js && cd /app && echo '{"name":"app","version":"1.0.0"}' > package.json && npm install --offline --no-audit --no-fund ../dep && node -p 'require("dep")' > /dep-value`,
    'CMD ["sh", "-c", "cat /node-version /npm-version /dep-value"]',
  ].join('\n')
  const tag = tagFor('node-base')
  const built = await build(t, docker, tag, { Dockerfile: `${dockerfile}\n` })
  t.equal(built.error, undefined, 'no build error')
  const { code, logs } = await run(t, docker, tag)
  t.equal(code, 0)
  t.match(logs, `node-${process.version}`)
  t.match(logs, /^\d+\.\d+\.\d+$/m, 'npm --version printed a version')
  t.match(logs, /^42$/m, 'npm installed the local package')
})

t.test('a generated Dockerfile builds a Node app with no dependencies, and runs it with $PORT', async (t) => {
  const app = {
    'package.json': JSON.stringify({ name: 'hello', version: '1.0.0' }),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the app's own source text, with its own template literal
    'server.js': 'console.log(`hello on ${process.env.PORT} in ${process.env.NODE_ENV}`)\n',
  }
  const stack = detectStack(repo(app))
  if (stack.stack !== 'node') throw new Error('expected a node stack')
  const tag = tagFor('node-app')
  const built = await build(t, docker, tag, { ...app, Dockerfile: stack.dockerfile })
  t.equal(built.error, undefined, 'no build error')
  const image = await docker.getImage(tag).inspect()
  t.same(image.Config.Cmd, ['node', 'server.js'])
  t.equal(image.Config.WorkingDir, '/app')
  t.ok(Object.hasOwn(image.Config.ExposedPorts ?? {}, '5000/tcp'), 'exposes 5000')
  const { code, logs } = await run(t, docker, tag)
  t.equal(code, 0)
  t.match(logs, 'hello on 5000 in production')
})

t.test('when npm cannot reach the registry, the build fails and says so last', async (t) => {
  const app = {
    'package.json': JSON.stringify({ name: 'needs', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } }),
    'server.js': '',
    // Once refused is enough: npm's default retries take over a minute.
    '.npmrc': 'fetch-retries=0\n',
  }
  const stack = detectStack(repo(app))
  if (stack.stack !== 'node') throw new Error('expected a node stack')
  // Port 9 on the build container's own loopback: refused at once, and no traffic leaves it.
  const registry = 'http://127.0.0.1:9/'
  const built = await build(t, docker, tagFor('node-noreg'), { ...app, Dockerfile: stack.dockerfile }, { NPM_CONFIG_REGISTRY: registry })
  t.ok(built.error, 'the build failed')
  // The engine colours stderr and reports removing the failed step's container after it.
  const lines = built.output
    .replace(/\x1b\[\d+m/g, '')
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('Removing intermediate container'))
  t.equal(lines.at(-1), `wharf: npm could not install the dependencies (npm's errors are above): is the npm registry (${registry}) reachable from the build?`)
})
