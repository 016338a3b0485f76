import Docker from 'dockerode'

/**
 * A dockerode client for `unix:///path/docker.sock` or `tcp://127.0.0.1:port` (plain, loopback only).
 */
export function dockerClient(host: string): Docker {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) })
  const m = /^tcp:\/\/(127\.0\.0\.1|localhost):(\d+)$/.exec(host)
  if (m) return new Docker({ host: '127.0.0.1', port: Number(m[2]), protocol: 'http' })
  throw new Error(`unsupported Docker host ${JSON.stringify(host)}: use unix:///path/to/docker.sock or tcp://127.0.0.1:PORT`)
}
