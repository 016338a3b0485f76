import t from 'tap'
import { detectStack, type RepoFiles, type Stack } from './stack.js'

const repo = (files: Record<string, string>): RepoFiles => ({ has: (p) => Object.hasOwn(files, p), read: (p) => files[p] })
const invalid = (message: RegExp) => ({ code: 'WHARF_INVALID', message })
const pkg = (json: object) => JSON.stringify(json)
const dockerfileOf = (stack: Stack): string => {
  if (stack.stack !== 'node') throw new Error(`expected a node stack, got ${stack.stack}`)
  return stack.dockerfile
}

t.test('a Dockerfile at the root wins over a package.json', async (t) => {
  t.same(detectStack(repo({ Dockerfile: 'FROM busybox\n', 'package.json': '{' })), { stack: 'dockerfile' })
})

t.test('neither a Dockerfile nor a package.json says what Wharf builds', async (t) => {
  t.throws(
    () => detectStack(repo({ 'README.md': 'hi', 'sub/Dockerfile': 'FROM busybox' })),
    invalid(/^no Dockerfile at the root of the repo, and no package\.json: Wharf builds a Dockerfile, or a Node app \(package\.json\)$/),
  )
})

t.test('a Node app with a lockfile: npm ci after copying manifest and lockfile, then the rest; npm start', async (t) => {
  const df = dockerfileOf(
    detectStack(repo({ 'package.json': pkg({ scripts: { start: 'node app.js' }, dependencies: { express: '^5' } }), 'package-lock.json': '{}', 'app.js': '' })),
  )
  const lines = df.trimEnd().split('\n')
  t.equal(lines[0], 'FROM node:26')
  t.equal(lines[1], 'WORKDIR /app')
  t.ok(lines.includes('ARG NPM_CONFIG_REGISTRY'), 'npm sees the registry the builder passes')
  const copyManifest = lines.indexOf('COPY package.json package-lock.json ./')
  const install = lines.findIndex((l) => l.startsWith('RUN npm ci --omit=dev || '))
  const copyRest = lines.indexOf('COPY . .')
  t.ok(copyManifest > 1 && copyManifest < install && install < copyRest, 'manifest, install, then the rest')
  t.match(
    lines[install],
    /echo "wharf: npm could not install the dependencies .*: is the npm registry \(\$\{NPM_CONFIG_REGISTRY:-https:\/\/registry\.npmjs\.org\/\}\) reachable from the build\?" >&2; exit 1; }$/,
  )
  t.ok(lines.includes('ENV PORT=5000 NODE_ENV=production'))
  t.ok(lines.includes('EXPOSE 5000'))
  t.equal(lines.at(-1), 'CMD ["npm","start"]')
})

t.test('npm-shrinkwrap.json counts as a lockfile', async (t) => {
  const df = dockerfileOf(detectStack(repo({ 'package.json': pkg({ main: 'a.js', dependencies: { x: '1' } }), 'npm-shrinkwrap.json': '{}', 'a.js': '' })))
  t.match(df, /^COPY package\.json npm-shrinkwrap\.json \.\/$/m)
  t.match(df, /^RUN npm ci --omit=dev /m)
})

t.test('an .npmrc is copied before the install, so its settings apply', async (t) => {
  const df = dockerfileOf(
    detectStack(repo({ 'package.json': pkg({ scripts: { start: 'x' }, dependencies: { x: '1' } }), 'package-lock.json': '{}', '.npmrc': 'fetch-retries=5\n' })),
  )
  t.match(df, /^COPY package\.json package-lock\.json \.npmrc \.\/$/m)
})

t.test('without a lockfile: npm install', async (t) => {
  const df = dockerfileOf(detectStack(repo({ 'package.json': pkg({ scripts: { start: 'x' }, dependencies: { x: '1' } }) })))
  t.match(df, /^COPY package\.json \.\/$/m)
  t.match(df, /^RUN npm install --omit=dev \|\| /m)
  t.notMatch(df, /npm ci/)
})

t.test('no dependencies: no install step at all', async (t) => {
  for (const deps of [undefined, {}]) {
    const df = dockerfileOf(
      detectStack(repo({ 'package.json': pkg({ scripts: { start: 'x' }, devDependencies: { tap: '1' }, dependencies: deps }), 'package-lock.json': '{}' })),
    )
    t.notMatch(df, /npm (ci|install)/, JSON.stringify(deps))
    t.notMatch(df, /NPM_CONFIG_REGISTRY/)
    t.match(df, /^COPY \. \.$/m)
  }
})

t.test('no start script: node with main, else server.js, else index.js', async (t) => {
  const cmd = (files: Record<string, string>) =>
    dockerfileOf(detectStack(repo(files)))
      .trimEnd()
      .split('\n')
      .at(-1)
  t.equal(cmd({ 'package.json': pkg({ main: './lib/app.js' }), 'lib/app.js': '', 'server.js': '' }), 'CMD ["node","lib/app.js"]')
  t.equal(cmd({ 'package.json': pkg({ main: 'missing.js' }), 'server.js': '', 'index.js': '' }), 'CMD ["node","server.js"]')
  t.equal(cmd({ 'package.json': pkg({}), 'index.js': '' }), 'CMD ["node","index.js"]')
  t.equal(cmd({ 'package.json': pkg({ scripts: { start: '  ' } }), 'index.js': '' }), 'CMD ["node","index.js"]', 'a blank start script does not count')
})

t.test('nothing to start says what to add', async (t) => {
  t.throws(
    () => detectStack(repo({ 'package.json': pkg({ scripts: { test: 'tap' } }) })),
    invalid(/no "start" script.*no server\.js or index\.js: add "scripts": \{ "start"/),
  )
  t.throws(() => detectStack(repo({ 'package.json': pkg({ main: 'gone.js' }) })), invalid(/its "main" \(gone\.js\) is not in the repo/))
})

t.test('a package.json that is not JSON names the parse error', async (t) => {
  t.throws(() => detectStack(repo({ 'package.json': '{"name": "x",}' })), invalid(/^package\.json is not valid JSON: .*(JSON|position|token)/i))
  t.throws(() => detectStack(repo({ 'package.json': '[1]' })), invalid(/^package\.json must hold a JSON object$/))
})
