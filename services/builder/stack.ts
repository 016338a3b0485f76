import { WharfError } from '../../core/errors.js'

/** How a repo is built: its own Dockerfile, or a Node app with a Dockerfile Wharf writes for it. */
export type Stack = { stack: 'dockerfile' } | { stack: 'node'; dockerfile: string }

/** The files of a pushed repo, by path from its root (`package.json`, `src/index.js`). */
export interface RepoFiles {
  has(path: string): boolean
  /** The file's text, or undefined when there is no such file. */
  read(path: string): string | undefined
}

/** The base image of a Node build; infra/parts/docker.ts makes it from the Node the platform runs on (the pinned LTS). */
export const NODE_BASE_IMAGE = 'node:26'
/** The port a Node app listens on, given to it as $PORT. */
export const NODE_PORT = 5000

/**
 * A `Dockerfile` at the root wins; else a `package.json` makes a Node app, built the way a Heroku
 * buildpack would. Anything else, or a package.json that cannot be built, is `WHARF_INVALID`.
 */
export function detectStack(files: RepoFiles): Stack {
  if (files.has('Dockerfile')) return { stack: 'dockerfile' }
  if (files.has('package.json')) return { stack: 'node', dockerfile: nodeDockerfile(files) }
  throw new WharfError('WHARF_INVALID', 'no Dockerfile at the root of the repo, and no package.json: Wharf builds a Dockerfile, or a Node app (package.json)')
}

interface PackageJson {
  main?: unknown
  scripts?: { start?: unknown }
  dependencies?: unknown
}

function readPackageJson(files: RepoFiles): PackageJson {
  let pkg: unknown
  try {
    pkg = JSON.parse(files.read('package.json') ?? '')
  } catch (err) {
    throw new WharfError('WHARF_INVALID', `package.json is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  if (typeof pkg !== 'object' || pkg === null || Array.isArray(pkg)) throw new WharfError('WHARF_INVALID', 'package.json must hold a JSON object')
  return pkg as PackageJson
}

/** The command that starts the app: `npm start`, else `node` with the entry file that exists. */
function startCommand(pkg: PackageJson, files: RepoFiles): string[] {
  if (typeof pkg.scripts?.start === 'string' && pkg.scripts.start.trim() !== '') return ['npm', 'start']
  const main = typeof pkg.main === 'string' ? pkg.main.replace(/^\.\//, '') : undefined
  const entry = [main, 'server.js', 'index.js'].find((f) => f !== undefined && f !== '' && files.has(f))
  if (entry) return ['node', entry]
  throw new WharfError(
    'WHARF_INVALID',
    `package.json has no "start" script${main ? `, its "main" (${main}) is not in the repo,` : ''} and there is no server.js or index.js: add "scripts": { "start": "node <your entry file>" } to package.json`,
  )
}

function nodeDockerfile(files: RepoFiles): string {
  const pkg = readPackageJson(files)
  const cmd = startCommand(pkg, files)
  const locks = ['package-lock.json', 'npm-shrinkwrap.json'].filter((f) => files.has(f))
  // The app's own npm settings apply to its install, as on Heroku (the builder's registry still wins).
  const npmrc = files.has('.npmrc') ? ['.npmrc'] : []
  const deps = typeof pkg.dependencies === 'object' && pkg.dependencies !== null && Object.keys(pkg.dependencies).length > 0
  const install = locks.length > 0 ? 'npm ci --omit=dev' : 'npm install --omit=dev'
  const lines = [
    `FROM ${NODE_BASE_IMAGE}`,
    'WORKDIR /app',
    ...(deps
      ? [
          // The builder passes the registry to use; npm reads NPM_CONFIG_* from the environment.
          'ARG NPM_CONFIG_REGISTRY',
          'ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false',
          // Manifest and lockfile first: the install layer is reused until they change.
          `COPY ${['package.json', ...locks, ...npmrc].join(' ')} ./`,
          `RUN ${install} || { echo "wharf: npm could not install the dependencies (npm's errors are above): is the npm registry (\${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org/}) reachable from the build?" >&2; exit 1; }`,
        ]
      : []),
    'COPY . .',
    `ENV PORT=${NODE_PORT} NODE_ENV=production`,
    `EXPOSE ${NODE_PORT}`,
    `CMD ${JSON.stringify(cmd)}`,
  ]
  return `${lines.join('\n')}\n`
}
