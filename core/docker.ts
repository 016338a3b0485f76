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

/**
 * Reads a stream of newline-separated JSON (the engine's events) until it ends, handing each object
 * to `onObject`; a line that is not JSON, or that `onObject` throws on, goes to `onBadLine`.
 * Resolves when the stream ends, closes or fails.
 */
export function readJsonLines(stream: NodeJS.ReadableStream, onObject: (o: unknown) => void, onBadLine: (err: unknown, line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let buf = ''
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim()
        buf = buf.slice(nl + 1)
        if (!line) continue
        try {
          onObject(JSON.parse(line))
        } catch (err) {
          onBadLine(err, line)
        }
      }
    })
    stream.on('end', () => resolve())
    stream.on('close', () => resolve())
    stream.on('error', (err: Error) => {
      onBadLine(err, '')
      resolve()
    })
  })
}
