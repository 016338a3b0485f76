import type { Command } from 'commander'
import WebSocket from 'ws'
import { resolveApp } from '../app.js'
import { CliError } from '../client.js'
import { STDERR, type ServerMessage, type StartMessage } from '../../services/controller/apps/run-protocol.js'
import { api, appPath, pairs, withApp } from './common.js'

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export interface RunOptions {
  /** The process type whose limits apply. */
  processType: string
  env: Record<string, string>
  /** Forward stdin. */
  stdin: boolean
  /** Allocate a TTY: the local terminal goes raw and its size follows. */
  tty: boolean
}

/**
 * Runs `command` through the controller's run socket (`GET /v1/apps/:app/run`, see
 * services/controller/apps/run.ts) with this process's stdin, stdout and stderr; answers the
 * command's exit code. Throws CliError for a refusal or a lost connection.
 */
export function runRemote(app: string, command: string[], opts: RunOptions): Promise<number> {
  const client = api()
  if (!client.url) throw new CliError('WHARF_INVALID', 'no controller: run `wharf auth:login <url>` first (or set WHARF_URL)')
  const url = `${client.url.replace(/^http/, 'ws')}${appPath({ app }, '/run')}`
  const ws = new WebSocket(url, { headers: client.token ? { authorization: `Bearer ${client.token}` } : {}, maxPayload: 8 * 1024 * 1024 })
  const stdin = process.stdin
  const raw = opts.tty && stdin.isTTY === true

  return new Promise<number>((resolve, reject) => {
    let exit: number | undefined
    let failure: CliError | undefined
    const cleanup = () => {
      if (raw) stdin.setRawMode(false)
      if (opts.stdin) stdin.destroy()
      process.stdout.off('resize', onResize)
    }
    const onResize = () => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }))
    }

    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => {
        let e: { code?: string; message?: string } | undefined
        try {
          e = JSON.parse(body)
        } catch {
          e = undefined
        }
        ws.terminate()
        cleanup()
        reject(new CliError(e?.code ?? `HTTP_${res.statusCode}`, e?.message ?? `the controller answered ${res.statusCode}`))
      })
    })
    ws.on('error', (err) => {
      failure ??= new CliError('WHARF_UNAVAILABLE', `cannot reach the controller at ${client.url}: ${err.message}`)
    })

    ws.on('open', () => {
      const start: StartMessage = { type: 'start', command, processType: opts.processType, env: opts.env, tty: opts.tty, stdin: opts.stdin }
      if (opts.tty && process.stdout.isTTY) Object.assign(start, { cols: process.stdout.columns, rows: process.stdout.rows })
      ws.send(JSON.stringify(start))
      if (raw) stdin.setRawMode(true)
      if (opts.tty) process.stdout.on('resize', onResize)
      if (opts.stdin) {
        stdin.on('data', (chunk: Buffer) => ws.readyState === ws.OPEN && ws.send(chunk))
        stdin.on('end', () => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'eof' })))
      }
    })

    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        ;(data[0] === STDERR ? process.stderr : process.stdout).write(data.subarray(1))
        return
      }
      const msg = JSON.parse(data.toString('utf8')) as ServerMessage
      if (msg.type === 'exit') exit = msg.code
      else if (msg.type === 'error') failure = new CliError(msg.code, msg.message)
    })

    ws.on('close', () => {
      cleanup()
      if (exit !== undefined) return resolve(exit)
      reject(failure ?? new CliError('WHARF_UNAVAILABLE', 'the connection to the controller closed before the command finished'))
    })
  })
}

/**
 * `wharf run [-a app] [-e KEY=value] [--type web] [-i] -- <command...>` (Heroku's and Deis's
 * `run`). Interactive (stdin forwarded, and a TTY when stdin is a terminal) by default when stdin
 * and stdout are terminals, as Heroku does; `-i` forwards piped stdin too, `--no-interactive` never.
 */
export function runTopic(program: Command): void {
  withApp(program.command('run').description('run a one-off command in a new container of the current release; exits with its exit code'))
    .argument('[command...]', 'the command and its arguments (put them after --)')
    .option('--type <type>', 'the process type whose limits apply', 'web')
    .option('-e, --env <KEY=value>', 'an extra environment variable (repeat for more)', collect, [] as string[])
    .option('-i, --interactive', 'forward stdin (a TTY too when stdin is a terminal); the default when stdin and stdout are terminals')
    .option('--no-interactive', 'do not forward stdin and no TTY, even from a terminal')
    .action(async (command: string[], opts: { app?: string; type: string; env: string[]; interactive?: boolean }) => {
      if (command.length === 0) throw new CliError('WHARF_INVALID', 'no command: wharf run -a <app> -- <command...>')
      const env = pairs(opts.env, 'KEY=value', (m) => new CliError('WHARF_INVALID', m))
      const app = resolveApp(opts.app)
      const interactive = opts.interactive ?? (process.stdin.isTTY === true && process.stdout.isTTY === true)
      const code = await runRemote(app, command, { processType: opts.type, env, stdin: interactive, tty: interactive && process.stdin.isTTY === true })
      process.exitCode = code
    })
}
