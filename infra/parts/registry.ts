import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { type RegistryCredentials, registryHeaders, type S3Config } from '../../core/config.js'
import { BUCKETS } from '../../core/objectstore/objectstore.js'
import { answers, daemonPart } from '../daemon.js'
import type { InfraContext } from '../part.js'
import { type DaemonSpec, execFileP, startDaemon, stopPidfile, waitUntil } from '../proc.js'
import { generatedSecret } from '../secrets.js'
import { s3Settings } from './ceph.js'

/**
 * Docker Distribution's configuration: image data in the store's `wharf-registry` bucket through its
 * S3 driver (nothing on local disk), 127.0.0.1 only. The S3 keys are not in the file: they go in the
 * registry's environment (see {@link registry}). The blob-descriptor cache is in the registry's
 * memory, or in Wharf's redis-server with `WHARF_REGISTRY_CACHE=redis`. Every request needs the
 * platform's credentials (htpasswd, see {@link registryCredentials}).
 */
export function registryConfig({ cfg, paths }: InfraContext, s3: Pick<S3Config, 'endpoint' | 'region'>): string {
  const redis =
    cfg.registryCache === 'redis'
      ? `redis:
  addr: 127.0.0.1:${cfg.ports.redis}
  db: 0
  dialtimeout: 1s
  readtimeout: 1s
  writetimeout: 1s
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
`
      : ''
  return `# Written by Wharf's infra on every start.
version: 0.1
log:
  level: info
  formatter: json
storage:
  s3:
    region: ${s3.region}
    regionendpoint: ${s3.endpoint}
    bucket: ${BUCKETS.registry}
    secure: ${s3.endpoint.startsWith('https:')}
    # With regionendpoint set the driver addresses buckets path-style, as radosgw needs.
    v4auth: true
    chunksize: 10485760
  delete:
    enabled: true
  # Without this, pulls are redirected to the gateway, which clients may not reach or trust.
  redirect:
    disable: true
  cache:
    blobdescriptor: ${cfg.registryCache}
  # Uploads a client abandoned (a push cut off mid-layer) are removed after a day.
  maintenance:
    uploadpurging:
      enabled: true
      age: 24h
      interval: 1h
      dryrun: false
${redis}auth:
  htpasswd:
    realm: wharf-registry
    path: ${paths.registry.htpasswd}
http:
  addr: 127.0.0.1:${cfg.ports.registry}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`
}

/**
 * The registry's user and password: `WHARF_REGISTRY_USER` (default `wharf`) with
 * `WHARF_REGISTRY_PASSWORD` when the operator gives one, else a random password generated once under
 * `$WHARF_HOME/secrets/registry-password` (mode 600), as Postgres's is.
 */
export function registryCredentials({ cfg, paths }: Pick<InfraContext, 'cfg' | 'paths'>): RegistryCredentials {
  const { username, password } = cfg.registryAuth
  if (password !== undefined) return { username, password }
  return { username, password: generatedSecret(paths, paths.registry.password) }
}

/**
 * Writes the htpasswd file (bcrypt, cost 10) with Debian's `htpasswd` (apache2-utils); the password
 * goes in on stdin, never on a command line or in a message.
 */
function writeHtpasswd(ctx: InfraContext): void {
  const { username, password } = registryCredentials(ctx)
  const out = spawnSync('htpasswd', ['-niB', '-C', '10', username], { input: password, encoding: 'utf8', timeout: 30_000 })
  if (out.error || out.status !== 0 || !out.stdout.startsWith(`${username}:$2`))
    throw new Error(`htpasswd could not hash the registry's password (apt-get install apache2-utils): ${out.error?.message ?? out.stderr.trim()}`)
  mkdirSync(ctx.paths.secrets, { recursive: true, mode: 0o700 })
  writeFileSync(ctx.paths.registry.htpasswd, `${out.stdout.trim()}\n`, { mode: 0o600 })
}

/** The registry answers its API to the platform's credentials. */
function registryAnswers(ctx: InfraContext): Promise<boolean> {
  return answers(`http://127.0.0.1:${ctx.cfg.ports.registry}/v2/`, 200, registryHeaders(registryCredentials(ctx)))
}

/**
 * `docker-registry` (Docker Distribution) on 127.0.0.1:<registry port>, storing in the store. It
 * starts after the store (its bucket and keys must exist) and, with the redis cache, after redis.
 */
export const registry = daemonPart({
  name: 'registry',
  after: ({ cfg }) => (cfg.registryCache === 'redis' ? ['store', 'redis'] : ['store']),
  address: ({ cfg }) => `http://127.0.0.1:${cfg.ports.registry}`,
  pidfile: ({ paths }) => paths.registry.pid,
  log: ({ paths }) => paths.registry.log,
  ports: ({ cfg }) => [{ port: cfg.ports.registry, env: 'WHARF_REGISTRY_PORT' }],
  healthy: (ctx) => registryAnswers(ctx),
  async describe(ctx) {
    const { stdout } = await execFileP('docker-registry', ['--version'])
    return { version: stdout.trim().split(/\s+/).pop(), detail: `storage: s3 ${ctx.cfg.s3.endpoint}/${BUCKETS.registry}; cache: ${ctx.cfg.registryCache}` }
  },
  prepare: prepareRegistry,
  // A registry an older checkout started (no credentials asked): started again with this config.
  async refresh(ctx) {
    let have = ''
    try {
      have = readFileSync(ctx.paths.registry.conf, 'utf8')
    } catch {
      // None: started again.
    }
    if (have.includes('htpasswd:')) return false
    await stopPidfile(ctx.paths.registry.pid, { signal: 'SIGTERM', timeoutMs: 20_000 })
    startDaemon(prepareRegistry(ctx))
    await waitUntil('registry', () => registryAnswers(ctx), 30_000)
    return true
  },
})

function prepareRegistry(ctx: InfraContext): DaemonSpec {
  const { paths } = ctx
  const s3 = s3Settings(ctx)
  mkdirSync(paths.registry.dir, { recursive: true })
  noteOldFilesystemData(ctx)
  writeHtpasswd(ctx)
  writeFileSync(paths.registry.conf, registryConfig(ctx, s3))
  // The registry panics when AWS_CA_BUNDLE is set (INFRA-NOTES): give it a clean environment.
  // Keys in the environment (REGISTRY_<section>_... overrides the file) keep them out of config.yml.
  const { AWS_CA_BUNDLE: _drop, WHARF_REGISTRY_PASSWORD: _secret, ...env } = process.env
  return {
    cmd: 'docker-registry',
    args: ['serve', paths.registry.conf],
    logFile: paths.registry.log,
    pidfile: paths.registry.pid,
    env: { ...env, REGISTRY_STORAGE_S3_ACCESSKEY: s3.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: s3.secretKey },
  }
}

/** Before the store, images were kept under $WHARF_HOME/registry/data: they are not read any more. */
function noteOldFilesystemData({ paths, say }: InfraContext): void {
  if (existsSync(paths.registry.data))
    say(`registry: images are kept in the store now; ${paths.registry.data} holds older ones and is not read (delete it when done)`)
}
