import { mkdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import { daemonPart } from '../daemon.js'

/**
 * Sends one inline command to the redis on 127.0.0.1:`port` and answers its reply (the first
 * line, or a bulk string whole), within a second.
 */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port })
    let buf = ''
    const done = (err?: Error) => {
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
    }
    const timer = setTimeout(() => done(new Error(`redis on port ${port}: no answer within 1 s`)), 1000)
    sock.on('error', done)
    sock.on('connect', () => sock.write(`${command}\r\n`))
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8')
      const bulk = /^\$(\d+)\r\n/.exec(buf)
      if (bulk) {
        const start = bulk[0].length
        const len = Number(bulk[1])
        if (buf.length < start + len) return
        done()
        resolve(buf.slice(start, start + len))
      } else if (buf.includes('\r\n')) {
        done()
        const line = buf.slice(0, buf.indexOf('\r\n'))
        if (line.startsWith('-')) reject(new Error(`redis: ${line.slice(1)}`))
        else resolve(line.replace(/^[+:]/, ''))
      }
    })
  })
}

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
        '--bind', '127.0.0.1',
        '--port', String(cfg.ports.redis),
        '--protected-mode', 'yes',
        '--daemonize', 'no',
        '--dir', paths.redis.dir,
        '--save', '',
        '--appendonly', 'no',
        '--maxmemory', '256mb',
        '--maxmemory-policy', 'allkeys-lru',
      ],
      logFile: paths.redis.log,
      pidfile: paths.redis.pid,
    }
  },
})
