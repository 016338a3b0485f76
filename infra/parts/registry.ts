import { mkdirSync, writeFileSync } from 'node:fs'
import { answers, daemonPart } from '../daemon.js'
import type { InfraContext } from '../part.js'
import { execFileP } from '../proc.js'

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

/** `docker-registry` (Docker Distribution) on 127.0.0.1:<registry port>. */
export const registry = daemonPart({
  name: 'registry',
  address: ({ cfg }) => `http://127.0.0.1:${cfg.ports.registry}`,
  pidfile: ({ paths }) => paths.registry.pid,
  log: ({ paths }) => paths.registry.log,
  ports: ({ cfg }) => [{ port: cfg.ports.registry, env: 'WHARF_REGISTRY_PORT' }],
  healthy: ({ cfg }) => answers(`http://127.0.0.1:${cfg.ports.registry}/v2/`),
  async describe() {
    const { stdout } = await execFileP('docker-registry', ['--version'])
    return { version: stdout.trim().split(/\s+/).pop() }
  },
  prepare(ctx) {
    const { paths } = ctx
    mkdirSync(paths.registry.data, { recursive: true })
    writeFileSync(paths.registry.conf, registryConfig(ctx))
    // The registry panics when AWS_CA_BUNDLE is set (INFRA-NOTES): give it a clean environment.
    const { AWS_CA_BUNDLE: _drop, ...env } = process.env
    return { cmd: 'docker-registry', args: ['serve', paths.registry.conf], logFile: paths.registry.log, pidfile: paths.registry.pid, env }
  },
})
