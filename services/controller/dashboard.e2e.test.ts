/**
 * The dashboard in a real browser: Debian's `chromium` driven by playwright-core (no browser
 * download), against a real services process (projector, controller, scheduler, publisher, logger)
 * on the test platform. A person signs in, sees the app, sets config and sees the new release in the
 * timeline without a reload, scales, follows live logs (with pause), rolls back and signs out; a
 * second user sees none of the first one's apps; a change made with the cookie but without the
 * CSRF header is refused. Screenshots of each page go to $WHARF_SCREENSHOTS (docs/dashboard when
 * the docs are refreshed), else to a temporary folder.
 */
import type { Browser, Page } from 'playwright-core'
import t from 'tap'

// Starting the services and a browser on a loaded machine takes a while; the steps themselves are
// quick. Set before anything heavy is loaded: the modules below are imported in the test, so that
// their loading counts against this timeout and not against tap's default.
t.setTimeout(300_000)

const { spawn } = await import('node:child_process')
const { randomBytes } = await import('node:crypto')
const { createSocket } = await import('node:dgram')
const { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } = await import('node:fs')
const { tmpdir } = await import('node:os')
const { join, resolve } = await import('node:path')
const { request } = await import('undici')
const { pathsFor } = await import('../../core/paths.js')
const { wharfCatalogue } = await import('../../domain/index.js')
const { EventSubjects, JetStreamEventStore } = await import('../../events/index.js')
const { stopPidfile } = await import('../../infra/proc.js')
const { freePort } = await import('../../infra/test-env.js')
const { freshDatabase, testNatsUrl, uniqueName, until } = await import('../../test/harness.js')
const { buildTestImage, removeImage, testDocker, testRegistry, testRegistryEnv } = await import('../builder/testing.js')
const { removeNamespaceServices } = await import('../scheduler/testing.js')
const { chromium } = await import('playwright-core')

const CHROMIUM = process.env.WHARF_CHROMIUM ?? '/usr/bin/chromium'
const docker = testDocker()
const START_MS = 120_000
/** Each wait in the browser, ms (a loaded test machine is slow). */
const UI_MS = 30_000

t.test('the dashboard in a browser: sign in, app, config, timeline, scale, logs, rollback, sign out; tenants apart', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (infra/install.sh does)`)
  const shots = resolve(process.env.WHARF_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'wharf-shots-')))
  mkdirSync(shots, { recursive: true })
  const namespace = uniqueName('dash').toLowerCase()
  const home = mkdtempSync(join(tmpdir(), 'wharf-dash-'))
  chmodSync(home, 0o755)
  t.teardown(async () => {
    await stopPidfile(pathsFor(home).nginx.pid)
    rmSync(home, { recursive: true, force: true })
  })
  t.teardown(async () => {
    await removeNamespaceServices(namespace)
    const store = await JetStreamEventStore.connect({ servers: testNatsUrl(), catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace) })
    await store.destroy()
    await store.close()
  })
  const port = await freePort()
  const syslogPort = await freePort()
  const out: string[] = []
  const child = spawn(
    process.execPath,
    [new URL('../../dist/services/main.js', import.meta.url).pathname, '--only', 'projector,controller,scheduler,publisher,logger'],
    {
      env: {
        PATH: process.env.PATH,
        WHARF_NATS_URL: testNatsUrl(),
        WHARF_DATABASE_URL: await freshDatabase(t, 'dash'),
        WHARF_CONTROLLER_PORT: String(port),
        WHARF_BUILDER_PORT: String(await freePort()),
        WHARF_SYSLOG_PORT: String(syslogPort),
        WHARF_LOG_INPUT_SECRET: randomBytes(24).toString('base64url'),
        WHARF_ROUTER_PORT: String(await freePort()),
        WHARF_ROUTER_TLS_PORT: String(await freePort()),
        WHARF_DOCKER_HOST: process.env.WHARF_TEST_DOCKER_HOST,
        ...testRegistryEnv(),
        WHARF_NAMESPACE: namespace,
        WHARF_HOME: home,
        WHARF_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()))
  child.stderr!.on('data', (d: Buffer) => out.push(d.toString()))
  t.teardown(() => void child.kill('SIGKILL'))
  const base = `http://127.0.0.1:${port}`
  try {
    await until('the controller', async () => (await request(`${base}/healthz`)).statusCode === 200, START_MS)
  } catch (err) {
    throw new Error(`${(err as Error).message}; it printed: ${out.join('').slice(-2000)}`)
  }

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.body.text()
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
  }
  const password = 'correct horse battery'
  for (const u of ['alice', 'bob']) await call('POST', '/v1/auth/register', undefined, { username: u, password, email: `${u}@example.com` })
  const alice = (await call('POST', '/v1/auth/login', undefined, { username: 'alice', password })).body.token as string
  const app = `dash${Date.now().toString(36).slice(-5)}`
  t.equal((await call('POST', '/v1/apps', alice, { name: app })).status, 201)
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  const image = await buildTestImage(t, docker, 'FROM busybox\nRUN mkdir /www && echo hi > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  const built = await call('POST', `/v1/apps/${app}/builds`, alice, { image, procfile: { web: 'exec httpd -f -p $PORT -h /www' }, port: 5000 })
  t.equal(built.status, 201, 'builds:create')
  const firstRelease = built.body.release as number

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  t.teardown(() => browser.close())
  const shot = (page: Page, name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })

  // Sign in.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } })
  const page = await ctx.newPage()
  page.setDefaultTimeout(UI_MS)
  const started = Date.now()
  await page.goto(`${base}/`)
  await page.getByLabel('Username').waitFor()
  const firstPaintMs = Date.now() - started
  await shot(page, 'signin')
  await page.getByLabel('Password').fill('wrong password')
  await page.getByLabel('Username').fill('alice')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'wrong username or password' }).waitFor()
  t.pass('a wrong password is said on the page')
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  const row = page.locator(`tr[data-app="${app}"]`)
  await row.waitFor()
  t.equal(await page.getByTestId('username').textContent(), 'alice')
  const cookie = (await ctx.cookies()).find((c) => c.name === 'wharf_session')
  t.ok(cookie?.httpOnly, 'the session cookie is HttpOnly')
  t.equal(cookie?.sameSite, 'Strict', '... and SameSite=Strict')
  t.equal(await page.evaluate('document.cookie'), '', '... and not readable from script')
  await row.locator('text=/v\\d+/').first().waitFor()
  await until(
    'the first deploy shown',
    async () => {
      if ((await row.textContent())?.includes('completed')) return true
      await page.reload()
      return undefined
    },
    90_000,
    2_000,
  )
  await shot(page, 'apps')
  t.pass(`the apps list shows ${app}, its release and last deploy (first page in ${firstPaintMs} ms)`)

  // A change with the cookie but without the CSRF header: refused, nothing recorded.
  const forged = await page.evaluate(async (path) => {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ values: { FORGED: '1' } }) })
    return { status: r.status, body: (await r.json()) as { code: string } }
  }, `/v1/apps/${app}/config`)
  t.equal(forged.status, 403, 'a cookie change without the CSRF header: 403')
  t.equal(forged.body.code, 'WHARF_FORBIDDEN')
  t.same(Object.keys((await call('GET', `/v1/apps/${app}/config`, alice)).body.values), [], '... and nothing was set')

  // The app page, and its timeline live in a second tab.
  await row.getByRole('link', { name: app, exact: true }).click()
  await page.getByRole('heading', { name: 'Releases' }).waitFor()
  const timeline = await ctx.newPage()
  timeline.setDefaultTimeout(UI_MS)
  await timeline.goto(`${base}/#/apps/${app}/timeline`)
  await timeline.getByText('live', { exact: true }).waitFor()
  await timeline.getByTestId(`trace-v${firstRelease}`).waitFor()

  // Config: set, hidden until revealed, and the new release appears in the timeline without a reload.
  await page.getByLabel('Key').fill('GREETING')
  await page.getByLabel('Value').fill('hello from the browser')
  await page.getByRole('button', { name: 'Set', exact: true }).click()
  await page.getByRole('status').filter({ hasText: 'Set GREETING' }).waitFor()
  const value = page.getByTestId('config-GREETING')
  t.equal(await value.textContent(), '••••••••', 'the value is hidden')
  await page.getByRole('button', { name: 'Reveal GREETING' }).click()
  t.equal(await value.textContent(), 'hello from the browser', '... until revealed')
  await timeline.locator('[data-testid="events"] li[data-type="ConfigSet"]').waitFor()
  await timeline.locator('[data-testid="events"] li[data-type="ReleaseCreated"]', { hasText: 'GREETING' }).waitFor()
  await timeline.getByTestId(`trace-v${firstRelease + 1}`).waitFor()
  t.pass('the timeline shows ConfigSet, the new release and its trace, live')

  // Scale.
  await page.getByLabel(/^web/).fill('2')
  await page.getByRole('button', { name: 'Scale', exact: true }).click()
  await page.getByRole('status').filter({ hasText: 'Scaled' }).waitFor()
  t.same((await call('GET', `/v1/apps/${app}/formation`, alice)).body.formation, { web: 2 }, 'scaled to web=2')
  await timeline.locator('[data-testid="events"] li[data-type="FormationScaled"]', { hasText: 'web=2' }).waitFor()
  await shot(page, 'app')
  await shot(timeline, 'timeline')

  // Live logs: a line sent now shows up; paused, it waits; resumed, it shows.
  await page.getByRole('link', { name: 'Logs' }).click()
  await page.getByText('live', { exact: true }).waitFor()
  const logToken = (await call('GET', `/v1/apps/${app}/logs/token`, alice)).body.token as string
  const send = (text: string) =>
    new Promise<void>((done, fail) => {
      const s = createSocket('udp4')
      s.send(`<14>1 ${new Date().toISOString()} e2e ${app} web.1 - - ${logToken} ${text}`, syslogPort, '127.0.0.1', (err) => {
        s.close()
        if (err) fail(err)
        else done()
      })
    })
  const logs = page.getByTestId('logs')
  const nonce = Math.random().toString(36).slice(2, 8)
  await until(
    'a live log line',
    async () => {
      await send(`hello ${nonce}`)
      return (await logs.textContent())?.includes(`hello ${nonce}`) || undefined
    },
    UI_MS,
    1_000,
  )
  t.pass('a line sent to the app appears in the live logs')
  await page.getByRole('button', { name: 'Pause' }).click()
  await send(`held ${nonce}`)
  await page.waitForTimeout(1_500)
  t.notOk((await logs.textContent())?.includes(`held ${nonce}`), 'paused: a new line waits')
  await page.getByRole('button', { name: 'Resume' }).click()
  await logs.getByText(`held ${nonce}`).waitFor()
  t.pass('... and shows on resume')
  await page.getByLabel('Process type').selectOption('web')
  await logs.getByText(`hello ${nonce}`).first().waitFor()
  await shot(page, 'logs')

  // Roll back to the first release.
  await page.getByRole('link', { name: 'Overview' }).click()
  await page.getByRole('button', { name: `Roll back to v${firstRelease}` }).click()
  await page
    .getByRole('status')
    .filter({ hasText: `Rolled back to v${firstRelease}` })
    .waitFor()
  const releases = (await call('GET', `/v1/apps/${app}/releases`, alice)).body.releases as { version: number; rollbackOf: number | null }[]
  t.equal(releases[0]?.rollbackOf, firstRelease, `a new release rolls back to v${firstRelease}`)

  // The platform page (alice is the admin).
  await page.getByRole('link', { name: 'Platform' }).click()
  await page.locator('tr[data-part="postgres"]').getByText('up').waitFor()
  await shot(page, 'platform')

  // A phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, storageState: await ctx.storageState() })
  const small = await phone.newPage()
  small.setDefaultTimeout(UI_MS)
  await small.goto(`${base}/`)
  await small.locator(`tr[data-app="${app}"]`).waitFor()
  t.ok((await small.evaluate<number>('document.documentElement.scrollWidth')) <= 390, 'no sideways scrolling on a phone')
  await shot(small, 'phone-apps')
  await phone.close()

  // Sign out: the token is revoked with the cookie.
  const token = (await ctx.cookies()).find((c) => c.name === 'wharf_session')!.value
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByLabel('Username').waitFor()
  t.equal((await call('GET', '/v1/auth/whoami', token)).status, 401, "signed out: the session's token no longer works")

  // Bob sees none of alice's apps, and not her app's page.
  const bobCtx = await browser.newContext()
  const bobPage = await bobCtx.newPage()
  bobPage.setDefaultTimeout(UI_MS)
  await bobPage.goto(`${base}/`)
  await bobPage.getByLabel('Username').fill('bob')
  await bobPage.getByLabel('Password').fill(password)
  await bobPage.getByRole('button', { name: 'Sign in' }).click()
  await bobPage.getByText('No apps yet').waitFor()
  t.equal(await bobPage.locator(`tr[data-app="${app}"]`).count(), 0, "bob's list has no app of alice's")
  await bobPage.goto(`${base}/#/apps/${app}`)
  await bobPage.getByRole('alert').waitFor()
  t.match(await bobPage.getByRole('alert').textContent(), /not found|no app/i, "alice's app page is not found for bob")
  t.notOk(await bobPage.getByRole('link', { name: 'Platform' }).count(), 'no platform page for a user')
  await bobCtx.close()
  await ctx.close()
})
