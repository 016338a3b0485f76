/**
 * The authorization matrix: every operation of `/v1/openapi.json` called as nobody, with an expired
 * token, as a user with no access to the app, as its collaborator, its owner and an admin. The
 * expected status of each is in MATRIX below, keyed by operation: a new route without a row fails
 * here. Whatever the table says, nobody and an expired token always get 401 on a non-public route,
 * a stranger never gets a 2xx on an app's route, and nothing answers 5xx.
 *
 * Bodies are `{}` (the schema decides), path parameters name the owner's app and things that do not
 * exist; the owner's destructive calls get an app of their own. `WHARF_MATRIX_PRINT=1` prints the
 * statuses seen, as rows for MATRIX.
 */
import t from 'tap'
import { fillPath, operationsOf, send, type Operation } from '../../../test/openapi.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureHostKey } from '../../builder/hostkey.js'
import { startTestLogger } from '../../logger/testing.js'
import { registerAndLogin, startTestController, type TestController } from '../testing.js'
import { forgetTokens } from '../auth.js'

const WHO = ['none', 'expired', 'other', 'collab', 'owner', 'admin'] as const
type Who = (typeof WHO)[number]

/** Expected statuses, in the order of WHO. */
const MATRIX: Record<string, [number, number, number, number, number, number]> = {
  'DELETE /v1/admins/{username}': [401, 401, 403, 403, 403, 404],
  'DELETE /v1/apps/{app}': [401, 401, 400, 400, 400, 400],
  'DELETE /v1/apps/{app}/certs/{name}': [401, 401, 404, 404, 404, 404],
  'DELETE /v1/apps/{app}/config': [401, 401, 400, 400, 400, 400],
  'DELETE /v1/apps/{app}/domains/{domain}': [401, 401, 404, 404, 404, 404],
  'DELETE /v1/apps/{app}/drains/{drain}': [401, 401, 404, 404, 404, 404],
  'DELETE /v1/apps/{app}/perms/{username}': [401, 401, 404, 403, 404, 404],
  'DELETE /v1/auth/session': [401, 401, 204, 204, 204, 204],
  'DELETE /v1/auth/tokens/{id}': [401, 401, 404, 404, 404, 404],
  'DELETE /v1/hooks/{id}': [401, 401, 400, 400, 400, 400],
  'DELETE /v1/keys/{id}': [401, 401, 404, 404, 404, 404],
  'GET /v1/admin/backups': [401, 401, 403, 403, 403, 200],
  'GET /v1/admin/exports': [401, 401, 403, 403, 403, 200],
  'GET /v1/admin/replays/{id}': [401, 401, 400, 400, 400, 400],
  // The test's controller has no Docker engine: an admin is told so (503 WHARF_UNAVAILABLE).
  'GET /v1/admin/hosts': [401, 401, 403, 403, 403, 503],
  'GET /v1/admin/status': [401, 401, 403, 403, 403, 200],
  'GET /v1/admins': [401, 401, 403, 403, 403, 200],
  'GET /v1/apps': [401, 401, 200, 200, 200, 200],
  // The dashboard's session: read from its cookie only, so a bearer token alone gets 401.
  'GET /v1/auth/session': [401, 401, 401, 401, 401, 401],
  'GET /v1/overview/apps': [401, 401, 200, 200, 200, 200],
  'GET /v1/apps/{app}': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/builds': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/builds/{build}': [401, 401, 404, 404, 404, 404],
  'GET /v1/apps/{app}/certs': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/config': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/domains': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/drains': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/formation': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/limits': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/logs': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/logs/stream': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/logs/token': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/maintenance': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/perms': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/processes': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/ps': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/releases': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/releases/{version}': [401, 401, 404, 200, 200, 200],
  'GET /v1/apps/{app}/run': [401, 401, 404, 400, 400, 400],
  'GET /v1/apps/{app}/trace': [401, 401, 400, 400, 400, 400],
  'GET /v1/auth/tokens': [401, 401, 200, 200, 200, 200],
  'GET /v1/auth/whoami': [401, 401, 200, 200, 200, 200],
  'GET /v1/builder': [401, 401, 200, 200, 200, 200],
  'GET /v1/events': [401, 401, 200, 200, 200, 200],
  'GET /v1/events/stream': [401, 401, 200, 200, 200, 200],
  'GET /v1/hooks': [401, 401, 200, 200, 200, 200],
  'GET /v1/hooks/{id}/deliveries': [401, 401, 400, 400, 400, 400],
  'GET /v1/keys': [401, 401, 200, 200, 200, 200],
  'GET /v1/keys/challenge': [401, 401, 200, 200, 200, 200],
  'GET /v1/users': [401, 401, 403, 403, 403, 200],
  'POST /v1/admin/backups': [401, 401, 403, 403, 403, 201],
  'POST /v1/admin/backups/{id}/restore': [401, 401, 400, 400, 400, 400],
  'POST /v1/admin/exports': [401, 401, 403, 403, 403, 201],
  'POST /v1/admin/exports/{id}/import': [400, 400, 400, 400, 400, 400],
  'POST /v1/admin/replays': [401, 401, 403, 403, 403, 202],
  'POST /v1/apps': [401, 401, 201, 201, 201, 201],
  'POST /v1/apps/{app}/builds': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/certs': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/certs/{name}/attach': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/certs/{name}/detach': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/config': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/config/unset': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/domains': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/drains': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/formation': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/limits': [401, 401, 404, 200, 200, 200],
  'POST /v1/apps/{app}/limits/unset': [401, 401, 404, 200, 200, 200],
  'POST /v1/apps/{app}/maintenance': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/perms': [401, 401, 400, 400, 400, 400],
  'POST /v1/apps/{app}/releases/rollback': [401, 401, 404, 400, 400, 400],
  'POST /v1/apps/{app}/restart': [401, 401, 404, 202, 202, 202],
  'POST /v1/apps/{app}/transfer': [401, 401, 400, 400, 400, 400],
  'POST /v1/auth/login': [400, 400, 400, 400, 400, 400],
  'POST /v1/auth/session': [400, 400, 400, 400, 400, 400],
  'POST /v1/auth/logout': [401, 401, 204, 204, 204, 204],
  'POST /v1/auth/passwd': [401, 401, 400, 400, 400, 400],
  'POST /v1/auth/register': [400, 400, 400, 400, 400, 400],
  'POST /v1/auth/tokens': [401, 401, 200, 200, 200, 200],
  'POST /v1/hooks': [401, 401, 400, 400, 400, 400],
  'POST /v1/hooks/{id}/redeliver': [401, 401, 400, 400, 400, 400],
  'POST /v1/keys': [401, 401, 400, 400, 400, 400],
  'PUT /v1/admins/{username}': [401, 401, 403, 403, 403, 404],
}

/** Operations that need no token (`config: { public: true }`): sign-up, sign-in, a new platform's import. */
const PUBLIC = new Set(['POST /v1/auth/register', 'POST /v1/auth/login', 'POST /v1/auth/session', 'POST /v1/admin/exports/{id}/import'])
/** Operations that need a part the test's controller does not have (a Docker engine): their 503 is the expected answer. */
const NEEDS_ENGINE = new Set(['GET /v1/admin/hosts'])

/** Operations run against an app of their own (they destroy or give it away). */
const OWN_APP = new Set(['DELETE /v1/apps/{app}', 'POST /v1/apps/{app}/transfer'])

// A few hundred requests: well under a minute on an idle machine, more when the 2 cores are shared.
t.setTimeout(300_000)

t.test('authorization matrix of every operation', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-matrix-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startTestController(t, { WHARF_LOGIN_FAILURES: '1000', WHARF_HOME: home })
  // What the log and builder routes need to answer: a logger, and the builder's host key.
  await startTestLogger(t, c)
  ensureHostKey(home)
  const tokens = {} as Record<Who, string | undefined>
  const login = async () => {
    tokens.admin = await loginAs(c, 'root')
    tokens.owner = await loginAs(c, 'alice')
    tokens.collab = await loginAs(c, 'bob')
    tokens.other = await loginAs(c, 'carol')
  }
  for (const u of ['root', 'alice', 'bob', 'carol', 'dave']) await registerAndLogin(c, u)
  await login()
  tokens.none = undefined
  tokens.expired = await loginAs(c, 'dave')
  // Dave's token, issued 31 days ago as far as the read model knows (again before each use: a replay rebuilds the row).
  // The controller's cache of tokens checked lately is told too: the row aged behind its back.
  const expire = async () => {
    await c.deps.pool.query("UPDATE rm_users.tokens SET created_at = now() - interval '31 days' WHERE username = 'dave'")
    forgetTokens(c.deps.pool)
  }
  const makeApp = async (name: string) => {
    t.equal((await c.call('POST', '/v1/apps', { token: tokens.owner, body: { name } })).status, 201, `alice creates ${name}`)
    t.equal((await c.call('POST', `/v1/apps/${name}/perms`, { token: tokens.owner, body: { username: 'bob' } })).status, 201, '... and shares it with bob')
  }
  await makeApp('shop')

  const ops = await operationsOf(c.url)
  t.ok(ops.length > 50, `${ops.length} operations in the OpenAPI document`)
  const seen: Record<string, number[]> = {}
  let n = 0
  for (const op of ops) {
    const app = OWN_APP.has(op.key) ? `own${n++}` : 'shop'
    if (app !== 'shop') await makeApp(app)
    const statuses: number[] = []
    for (const who of WHO) {
      if (who === 'expired') await expire()
      const res = await call(c, op, app, tokens[who])
      statuses.push(res.status)
      if (NEEDS_ENGINE.has(op.key) && res.status === 503) t.match(res.body, { code: 'WHARF_UNAVAILABLE' }, `${op.key} as ${who}: 503 names the missing engine`)
      else t.ok(res.status < 500, `${op.key} as ${who}: ${res.status} is not a server error ${res.status >= 500 ? JSON.stringify(res.body) : ''}`)
      if ((who === 'none' || who === 'expired') && !op.public && !PUBLIC.has(op.key)) t.equal(res.status, 401, `${op.key} as ${who}: 401`)
      if (who === 'other' && op.params.includes('app')) t.ok(res.status >= 400, `${op.key} as a stranger to the app: ${res.status}, not a success`)
      // A replay rebuilds the tokens read model in the background: wait for it, or it brings back
      // dave's row un-expired under a later call's feet.
      if (op.key === 'POST /v1/admin/replays' && res.status === 202) await replayDone(c, res.body.id, tokens.admin)
      // Calls that sign out or regenerate: everyone signs in again.
      if (op.key === 'POST /v1/auth/logout' || op.key === 'POST /v1/auth/tokens' || op.key === 'DELETE /v1/auth/session') await login()
    }
    seen[op.key] = statuses
    const want = MATRIX[op.key]
    if (!process.env.WHARF_MATRIX_PRINT)
      t.same(statuses, want, `${op.key}: ${want ? WHO.map((w, i) => `${w} ${want[i]}`).join(', ') : 'NOT IN THE MATRIX: add a row'}`)
  }
  for (const key of Object.keys(MATRIX)) t.ok(seen[key], `${key} of the matrix is still an operation`)
  if (process.env.WHARF_MATRIX_PRINT) for (const [k, v] of Object.entries(seen)) console.log(`  '${k}': [${v.join(', ')}],`)
})

async function replayDone(c: TestController, id: string, token: string | undefined): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const res = await c.call('GET', `/v1/admin/replays/${id}`, { token })
    if (res.status !== 200 || res.body.status !== 'running') return
    if (Date.now() > deadline) throw new Error(`replay ${id} still running after 120 s`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function loginAs(c: TestController, username: string): Promise<string> {
  const res = await c.call('POST', '/v1/auth/login', { body: { username, password: 'correct horse' } })
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status}`)
  return res.body.token
}

/** The operation as `token`'s holder: path parameters of the owner's app and of things that do not exist, a body of `{}`. */
function call(c: TestController, op: Operation, app: string, token: string | undefined) {
  const path = fillPath(op.path, {
    app,
    build: '0193a0f2-7c1e-7d2a-9b1c-1234567890ab',
    version: 'v1',
    name: 'nocert',
    domain: 'nothere.example.com',
    drain: 'nodrain',
    username: 'nosuchuser',
    id: '0123456789abcdef',
  })
  return send(c.url, op.method, path, { token, ...(op.method === 'GET' || op.method === 'DELETE' ? {} : { body: '{}' }) })
}
