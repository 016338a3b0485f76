import { createConnection } from 'node:net'

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
