/**
 * The pre-receive hook and the builder's end of it. A push is built *inside* git's pre-receive hook,
 * as Heroku does: the refs move only when the build succeeded, so a failed build leaves the repo as
 * it was and the same commit can simply be pushed again (Deis v1 updated the ref first, and a failed
 * build then answered the next push with "Everything up-to-date").
 *
 * The hook is a few lines of Node: it reads the ref updates from stdin, connects to the builder's
 * Unix socket, sends them with the push's token and git's quarantine variables (the pushed objects
 * are only visible through them until the hook accepts), copies the build output it receives to its
 * stdout (git shows it on the pusher's terminal as `remote: ...`) and exits with the code the
 * builder sends. If the builder goes away, the hook exits 1 and git rejects the push.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { GIT_SHA_RE } from '../../domain/index.js'

/** What the hook sends first: one JSON line. */
export interface HookHello {
  token: string
  /** git's stdin for pre-receive: `<old-sha> <new-sha> <ref>` lines. */
  refs: string
  /** GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES, GIT_QUARANTINE_PATH as the hook saw them. */
  env: Record<string, string>
}

/** One ref update of a push. */
export interface RefUpdate {
  old: string
  new: string
  ref: string
}

export const ZERO_SHA = '0'.repeat(40)

export function parseRefUpdates(text: string): RefUpdate[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [old, nu, ref] = l.split(/\s+/)
      return { old: old!, new: nu!, ref: ref! }
    })
    .filter((u) => GIT_SHA_RE.test(u.old) && GIT_SHA_RE.test(u.new) && !!u.ref)
}

/** The hook script (CommonJS, so no package.json above the repo can change how Node reads it). */
const HOOK_JS = `'use strict'
// Written by Wharf's builder: sends this push's ref updates to the builder and shows the build.
const net = require('node:net')
const keep = ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH']
let refs = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (d) => { refs += d })
process.stdin.on('end', () => {
  const env = {}
  for (const k of keep) if (process.env[k]) env[k] = process.env[k]
  const sock = net.connect(process.env.WHARF_PUSH_SOCKET || '')
  let buf = ''
  let code
  sock.setEncoding('utf8')
  sock.on('connect', () => sock.write(JSON.stringify({ token: process.env.WHARF_PUSH_TOKEN || '', refs, env }) + '\\n'))
  sock.on('data', (d) => {
    buf += d
    for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
      const m = JSON.parse(buf.slice(0, i))
      buf = buf.slice(i + 1)
      if (typeof m.out === 'string') process.stdout.write(m.out)
      if (typeof m.exit === 'number') code = m.exit
    }
  })
  sock.on('error', (err) => { if (code === undefined) process.stdout.write('wharf: cannot reach the builder (' + err.message + '); push again\\n') })
  sock.on('close', () => {
    if (code === undefined) process.stdout.write('wharf: the builder stopped during this push; nothing was released; push again\\n')
    process.exitCode = code === undefined ? 1 : code
  })
})
`

/** Writes the pre-receive hook into a bare repo (every push, so an upgraded builder's hook is used). */
export function installHook(repo: string, nodePath = process.execPath): void {
  const js = join(repo, 'hooks', 'wharf-pre-receive.cjs')
  writeFileSync(js, HOOK_JS)
  const sh = join(repo, 'hooks', 'pre-receive')
  writeFileSync(sh, `#!/bin/sh\nexec '${nodePath.replaceAll("'", "'\\''")}' "$(dirname "$0")/wharf-pre-receive.cjs"\n`)
  chmodSync(sh, 0o755)
}

/** The builder's end of one hook: the ref updates, and a way to talk to the pusher. */
export interface HookSession {
  refs: RefUpdate[]
  /** git's quarantine variables: needed to read the pushed objects before the refs move. */
  gitEnv: Record<string, string>
  /**
   * Writes text to the pusher's terminal (git prefixes each line with `remote: `). False when the
   * socket holds more than its high-water mark unsent: wait for {@link HookSession.drained} before more.
   */
  write(text: string): boolean
  /** Resolves when the socket has sent what it held (or is gone). */
  drained(): Promise<void>
  /** Ends the hook: 0 accepts the push, anything else rejects it. */
  exit(code: number): void
  /** Aborted when the hook (and so the push) went away. */
  signal: AbortSignal
}

/**
 * One Unix socket per builder, where the hooks of its pushes connect. `expect()` gives a token for
 * the push's environment and a promise of its hook.
 */
export class HookServer {
  readonly #server: Server
  readonly #waiting = new Map<string, (s: HookSession) => void>()
  readonly path: string

  private constructor(path: string, server: Server) {
    this.path = path
    this.#server = server
  }

  static async listen(path: string): Promise<HookServer> {
    rmSync(path, { force: true })
    let self: HookServer | undefined
    const server = createServer((sock) => self!.#accept(sock))
    self = new HookServer(path, server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
    chmodSync(path, 0o600)
    return self
  }

  /** A token for one push, and its hook when git runs it (never, when no ref changes). */
  expect(): { token: string; hook: Promise<HookSession>; cancel(): void } {
    const token = randomBytes(24).toString('hex')
    let cancel = () => {}
    const hook = new Promise<HookSession>((resolve) => {
      this.#waiting.set(token, resolve)
      cancel = () => this.#waiting.delete(token)
    })
    return { token, hook, cancel }
  }

  #accept(sock: Socket): void {
    let buf = ''
    sock.setEncoding('utf8')
    const onData = (d: string) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i < 0) {
        if (buf.length > 1 << 20) sock.destroy()
        return
      }
      sock.off('data', onData)
      let hello: HookHello
      try {
        hello = JSON.parse(buf.slice(0, i)) as HookHello
      } catch {
        sock.destroy()
        return
      }
      const resolve = this.#waiting.get(hello.token)
      if (!resolve) {
        sock.end(`${JSON.stringify({ out: 'wharf: this push is not known to the builder\n', exit: 1 })}\n`)
        return
      }
      this.#waiting.delete(hello.token)
      const ac = new AbortController()
      sock.on('close', () => ac.abort())
      sock.on('error', () => ac.abort())
      let ended = false
      resolve({
        refs: parseRefUpdates(hello.refs),
        gitEnv: hello.env ?? {},
        signal: ac.signal,
        write(text) {
          if (ended || sock.destroyed) return true
          return sock.write(`${JSON.stringify({ out: text })}\n`)
        },
        drained() {
          if (sock.destroyed || !sock.writableNeedDrain) return Promise.resolve()
          return new Promise<void>((resolve) => {
            const done = () => {
              sock.off('drain', done)
              sock.off('close', done)
              resolve()
            }
            sock.on('drain', done)
            sock.on('close', done)
          })
        },
        exit(code) {
          if (ended) return
          ended = true
          if (!sock.destroyed) sock.end(`${JSON.stringify({ exit: code })}\n`)
        },
      })
    }
    sock.on('data', onData)
    sock.on('error', () => {})
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
    rmSync(this.path, { force: true })
  }
}
