/**
 * `GET /v1/admin/status`: each real part of the platform probed from the controller, as up or down
 * with its address and version. Up means it answered a real request just now (the engine its API, NATS
 * a client connection, Postgres a query, nginx and the registry HTTP, the store a listing of every
 * bucket). Versions come from the part's answer where it gives one, else (nginx, the registry, the
 * Ceph gateway do not say) from the binary on this host, which is the one running on a one-host platform.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect } from '@nats-io/transport-node'
import { request } from 'undici'
import { registryHeaders } from '../../../core/config.js'
import { BUCKETS } from '../../../core/objectstore/index.js'
import { redisCommand } from '../../../core/redis.js'
import { natsServers } from '../../../events/index.js'
import type { ControllerDeps } from '../context.js'

const execFileP = promisify(execFile)

export interface PartState {
  part: 'engine' | 'swarm' | 'nats' | 'postgres' | 'nginx' | 'registry' | 'store' | 'redis'
  up: boolean
  address: string
  version?: string
  detail?: string
}

/** Each probe's bound, ms. */
const PROBE_MS = 3_000

const versions = new Map<string, Promise<string | undefined>>()
/** The version a local binary prints (`pattern`'s first group), asked once per process; undefined when it is not here. */
function localVersion(cmd: string, args: string[], pattern: RegExp): Promise<string | undefined> {
  let v = versions.get(cmd)
  if (!v) {
    v = execFileP(cmd, args, { timeout: PROBE_MS }).then(
      ({ stdout, stderr }) => pattern.exec(`${stdout}\n${stderr}`)?.[1],
      () => undefined,
    )
    versions.set(cmd, v)
  }
  return v
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${PROBE_MS / 1000} s`)), PROBE_MS))),
  ]).finally(() => clearTimeout(timer))
}

async function probe(
  part: PartState['part'],
  address: string,
  fn: () => Promise<Omit<PartState, 'part' | 'address' | 'up'> & { up?: boolean }>,
): Promise<PartState> {
  try {
    const r = await bounded(fn(), part)
    return { part, address, up: r.up ?? true, ...r }
  } catch (err) {
    return { part, address, up: false, detail: (err as Error).message }
  }
}

/** The Postgres URL without its password. */
function safeUrl(url: string): string {
  const u = new URL(url)
  u.password = ''
  return u.toString()
}

/** Probes every part at once; answers them in a fixed order. */
export async function platformStatus(deps: ControllerDeps): Promise<PartState[]> {
  const { cfg } = deps
  const dockerHost = cfg.dockerHost
  const engine = deps.engine
  const noEngine = async () => ({ up: false, detail: 'no Docker engine configured (WHARF_DOCKER_HOST)' })
  const info = engine ? bounded(engine.info(), 'engine') : undefined
  info?.catch(() => {})
  const ownGateway = cfg.s3.endpoint === `http://127.0.0.1:${cfg.ports.s3}`
  const probes = [
    probe(
      'engine',
      dockerHost ?? '(none)',
      info
        ? async () => {
            const v = await info
            return { version: v.version, detail: `API ${v.apiVersion}, ${v.os}/${v.arch}` }
          }
        : noEngine,
    ),
    probe(
      'swarm',
      dockerHost ?? '(none)',
      info
        ? async () => {
            const i = await info
            const s = i.swarm ?? {}
            const active = s.state === 'active'
            return {
              up: active,
              version: i.version,
              detail: active
                ? `node ${s.nodeId?.slice(0, 12)} at ${s.nodeAddr}${s.controlAvailable ? ' (manager)' : ''}, ${s.nodes} node(s), ${s.managers} manager(s)`
                : `swarm mode ${s.state ?? 'unknown'}`,
            }
          }
        : noEngine,
    ),
    probe('nats', natsServers(cfg.natsUrl).shown, async () => {
      const { shown: _, ...servers } = natsServers(cfg.natsUrl)
      const nc = await connect({ ...servers, name: 'wharf-status', timeout: PROBE_MS, maxReconnectAttempts: 0, reconnect: false })
      try {
        const i = nc.info
        return { up: Boolean(i?.jetstream), version: i?.version, detail: i?.jetstream ? 'JetStream enabled' : 'JetStream is not enabled' }
      } finally {
        await nc.close()
      }
    }),
    probe('postgres', cfg.databaseUrl ? safeUrl(cfg.databaseUrl) : '(pool)', async () => {
      const { rows } = await deps.pool.query<{ v: string; db: string }>("SELECT current_setting('server_version') AS v, current_database() AS db")
      return { version: rows[0]?.v, detail: `database ${rows[0]?.db}` }
    }),
    probe('nginx', `http://127.0.0.1:${cfg.ports.router}`, async () => {
      const res = await request(`http://127.0.0.1:${cfg.ports.router}/`, {
        headers: { host: `wharf-status.${cfg.domain}` },
        headersTimeout: PROBE_MS,
        bodyTimeout: PROBE_MS,
      })
      await res.body.dump()
      const server = res.headers.server
      return {
        up: typeof server === 'string' && server.startsWith('nginx'),
        version: await localVersion('nginx', ['-v'], /nginx\/(\S+)/),
        detail: `answered ${res.statusCode}`,
      }
    }),
    probe('registry', `http://127.0.0.1:${cfg.ports.registry}`, async () => {
      const res = await request(`http://127.0.0.1:${cfg.ports.registry}/v2/`, {
        headersTimeout: PROBE_MS,
        bodyTimeout: PROBE_MS,
        headers: registryHeaders(cfg.registryAuth),
      })
      await res.body.dump()
      return {
        up: res.statusCode === 200,
        version: await localVersion('docker-registry', ['--version'], /(\d+\.\d+\.\d+\S*)\s*$/m),
        detail: `${res.headers['docker-distribution-api-version'] ?? `answered ${res.statusCode}`}; images in s3 bucket ${BUCKETS.registry}, cache ${cfg.registryCache}`,
      }
    }),
    probe('store', cfg.s3.endpoint, async () => {
      const objects = deps.objects
      if (!objects) return { up: false, detail: 'no S3 endpoint configured' }
      // A listing of each bucket: the gateway answers, takes the keys, and every bucket is there.
      await Promise.all(
        Object.keys(BUCKETS).map(async (b) => {
          for await (const _ of objects[b as keyof typeof BUCKETS].list('wharf-status-probe/')) break
        }),
      )
      return {
        ...(ownGateway ? { version: await localVersion('radosgw', ['--version'], /ceph version (\S+)/) } : {}),
        detail: `${ownGateway ? "Wharf's Ceph RADOS Gateway" : 'external S3'}; buckets ${Object.values(BUCKETS).join(', ')}`,
      }
    }),
  ]
  if (cfg.registryCache === 'redis') {
    probes.push(
      probe('redis', `redis://127.0.0.1:${cfg.ports.redis}`, async () => {
        const info = await redisCommand(cfg.ports.redis, 'INFO server')
        return { version: /redis_version:(\S+)/.exec(info)?.[1], detail: 'the registry blob-descriptor cache' }
      }),
    )
  }
  return Promise.all(probes)
}
