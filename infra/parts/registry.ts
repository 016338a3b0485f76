import { mkdirSync, writeFileSync } from 'node:fs'
import { request } from 'undici'
import type { InfraContext, Part } from '../part.js'
import { execFileP, livePid, portOpen, startDaemon, stopPidfile, tail, waitUntil } from '../proc.js'

/** Docker Distribution's configuration: filesystem storage under $WHARF_HOME/registry, 127.0.0.1 only. */
export function registryConfig({ cfg, paths }: InfraContext): string {
  return `# Written by Wharf's infra on every start.
version: 0.1
log:
  level: info
  formatter: json
storage:
  filesystem:
    rootdirectory: ${paths.registry.data}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
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

async function answers(port: number): Promise<boolean> {
  const res = await request(`http://127.0.0.1:${port}/v2/`, { headersTimeout: 1000, bodyTimeout: 1000 })
  await res.body.dump()
  return res.statusCode === 200
}

/** `docker-registry` (Docker Distribution) on 127.0.0.1:<registry port>. */
export const registry: Part = {
  name: 'registry',
  async status({ cfg, paths }) {
    const address = `http://127.0.0.1:${cfg.ports.registry}`
    const pid = livePid(paths.registry.pid)
    if (!pid) return { up: false, address }
    try {
      const { stdout } = await execFileP('docker-registry', ['--version'])
      return { up: await answers(cfg.ports.registry), address, pid, version: stdout.trim().split(/\s+/).pop() }
    } catch (err) {
      return { up: false, address, pid, detail: (err as Error).message }
    }
  },
  async start(ctx) {
    const { cfg, paths } = ctx
    if (livePid(paths.registry.pid)) {
      await waitUntil('registry', () => answers(cfg.ports.registry), 15_000)
      return 'running'
    }
    if (await portOpen(cfg.ports.registry)) throw new Error(`registry: port ${cfg.ports.registry} is already taken by another process (set WHARF_REGISTRY_PORT)`)
    mkdirSync(paths.registry.data, { recursive: true })
    writeFileSync(paths.registry.conf, registryConfig(ctx))
    // The registry panics when AWS_CA_BUNDLE is set (INFRA-NOTES): give it a clean environment.
    const { AWS_CA_BUNDLE: _drop, ...env } = process.env
    startDaemon({ cmd: 'docker-registry', args: ['serve', paths.registry.conf], logFile: paths.registry.log, pidfile: paths.registry.pid, env })
    await waitUntil('registry', () => answers(cfg.ports.registry), 20_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${tail(paths.registry.log)}`)
    })
    return 'started'
  },
  async stop({ paths }) {
    return (await stopPidfile(paths.registry.pid)) ? 'stopped' : 'not running'
  },
}
