import { mkdirSync } from 'node:fs'
import { redisCommand } from '../../core/redis.js'
import { daemonPart } from '../daemon.js'

/**
 * Debian's `redis-server` on 127.0.0.1:<redis port>, as the registry's blob-descriptor cache
 * (`WHARF_REGISTRY_CACHE=redis`). A cache only: no snapshots or append-only file, bounded memory
 * with least-recently-used eviction; losing it costs only S3 look-ups.
 */
export const redis = daemonPart({
  name: 'redis',
  address: ({ cfg }) => `redis://127.0.0.1:${cfg.ports.redis}`,
  pidfile: ({ paths }) => paths.redis.pid,
  log: ({ paths }) => paths.redis.log,
  ports: ({ cfg }) => [{ port: cfg.ports.redis, env: 'WHARF_REDIS_PORT' }],
  healthy: async ({ cfg }) => (await redisCommand(cfg.ports.redis, 'PING')) === 'PONG',
  async describe({ cfg }) {
    const info = await redisCommand(cfg.ports.redis, 'INFO server')
    return { version: /redis_version:(\S+)/.exec(info)?.[1], detail: 'registry blob-descriptor cache' }
  },
  prepare({ cfg, paths }) {
    mkdirSync(paths.redis.dir, { recursive: true })
    return {
      cmd: 'redis-server',
      // Options on the command line: no config file to write. `--save ""` turns snapshots off.
      args: [
        '--bind',
        '127.0.0.1',
        '--port',
        String(cfg.ports.redis),
        '--protected-mode',
        'yes',
        '--daemonize',
        'no',
        '--dir',
        paths.redis.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory',
        '256mb',
        '--maxmemory-policy',
        'allkeys-lru',
      ],
      logFile: paths.redis.log,
      pidfile: paths.redis.pid,
    }
  },
})
