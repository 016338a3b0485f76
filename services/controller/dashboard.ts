/**
 * The dashboard's files (built by Vite from web/ into dist/web by `make build`), served by the
 * controller at `/` and `/assets/*`: read once at start into memory (a few files, tens of KB), so a
 * request is a map lookup and no path from a URL ever reaches the file system. The page calls the
 * same /v1 API as the CLI, signed in through the session cookie (session.ts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
}

/** Only scripts and styles of this origin, no frames, no plugins: what the dashboard needs and nothing more. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

interface File {
  body: Buffer
  gzip: Buffer
  type: string
}

/** Where the built dashboard is: dist/web from the sources (tsx), or web/ beside the compiled services (dist/). */
export function dashboardDir(): string | undefined {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  return [resolve(root, 'dist/web'), resolve(root, 'web')].find((d) => existsSync(join(d, 'index.html')))
}

function readTree(dir: string): Map<string, File> {
  const files = new Map<string, File>()
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        const body = readFileSync(path)
        files.set(`/${relative(dir, path).split('\\').join('/')}`, { body, gzip: gzipSync(body), type: TYPES[extname(name)] ?? 'application/octet-stream' })
      }
    }
  }
  walk(dir)
  return files
}

/**
 * Registers `/` (the page) and `/assets/*` (its hashed, immutable scripts and styles). Without a
 * built dashboard, `/` says how to build it.
 */
export function registerDashboard(app: FastifyInstance, dir: string | undefined): void {
  const files = dir ? readTree(dir) : new Map<string, File>()
  const send = (file: File, acceptEncoding: string | undefined, reply: import('fastify').FastifyReply, cache: string) => {
    reply.header('content-type', file.type).header('cache-control', cache).header('x-content-type-options', 'nosniff').header('vary', 'accept-encoding')
    if (/\bgzip\b/.test(acceptEncoding ?? '')) return reply.header('content-encoding', 'gzip').send(file.gzip)
    return reply.send(file.body)
  }
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    const page = files.get('/index.html')
    if (!page) return reply.status(503).type('text/plain').send('The dashboard is not built: run `make build`.\n')
    reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY').header('referrer-policy', 'same-origin')
    return send(page, req.headers['accept-encoding'], reply, 'no-cache')
  })
  app.get('/assets/*', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    const file = files.get(req.url.split('?')[0]!)
    if (!file) return reply.status(404).send({ code: 'WHARF_NOT_FOUND', message: 'no such file' })
    return send(file, req.headers['accept-encoding'], reply, 'public, max-age=31536000, immutable')
  })
}
