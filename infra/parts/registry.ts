import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import type { S3Config } from '../../core/config.js'
import { BUCKETS } from '../../core/objectstore/objectstore.js'
import { answers, daemonPart } from '../daemon.js'
import type { InfraContext } from '../part.js'
import { execFileP } from '../proc.js'
import { s3Settings } from './ceph.js'

/**
 * Docker Distribution's configuration: image data in the store's `wharf-registry` bucket through its
 * S3 driver (nothing on local disk), 127.0.0.1 only. The S3 keys are not in the file: they go in the
 * registry's environment (see {@link registry}). The blob-descriptor cache is in the registry's
 * memory, or in Wharf's redis-server with `WHARF_REGISTRY_CACHE=redis`.
 */
export function registryConfig({ cfg }: InfraContext, s3: Pick<S3Config, 'endpoint' | 'region'>): string {
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
${redis}http:
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
  healthy: ({ cfg }) => answers(`http://127.0.0.1:${cfg.ports.registry}/v2/`),
  async describe(ctx) {
    const { stdout } = await execFileP('docker-registry', ['--version'])
    return { version: stdout.trim().split(/\s+/).pop(), detail: `storage: s3 ${ctx.cfg.s3.endpoint}/${BUCKETS.registry}; cache: ${ctx.cfg.registryCache}` }
  },
  prepare(ctx) {
    const { paths } = ctx
    const s3 = s3Settings(ctx)
    mkdirSync(paths.registry.dir, { recursive: true })
    noteOldFilesystemData(ctx)
    writeFileSync(paths.registry.conf, registryConfig(ctx, s3))
    // The registry panics when AWS_CA_BUNDLE is set (INFRA-NOTES): give it a clean environment.
    // Keys in the environment (REGISTRY_<section>_... overrides the file) keep them out of config.yml.
    const { AWS_CA_BUNDLE: _drop, ...env } = process.env
    return {
      cmd: 'docker-registry',
      args: ['serve', paths.registry.conf],
      logFile: paths.registry.log,
      pidfile: paths.registry.pid,
      env: { ...env, REGISTRY_STORAGE_S3_ACCESSKEY: s3.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: s3.secretKey },
    }
  },
})

/** Before the store, images were kept under $WHARF_HOME/registry/data: they are not read any more. */
function noteOldFilesystemData({ paths, say }: InfraContext): void {
  if (existsSync(paths.registry.data))
    say(`registry: images are kept in the store now; ${paths.registry.data} holds older ones and is not read (delete it when done)`)
}
