import pg from 'pg'
import type { Test } from 'tap'

/**
 * What integration tests share: where the real servers that `make test` started answer.
 * `make test` (infra/test-env) starts NATS, Postgres and the rest under a temporary WHARF_HOME and
 * exports these variables; running an `*.int.test.ts` file without them fails loudly rather than
 * skipping.
 */
function required(name: string): string {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set: run integration tests through \`make test\` (it starts the real servers)`)
  return v
}

/** nats://127.0.0.1:port of the test NATS server (JetStream enabled). */
export const testNatsUrl = (): string => required('WHARF_TEST_NATS_URL')
/** postgres://... of the test database. */
export const testPgUrl = (): string => required('WHARF_TEST_PG_URL')
/** The test store's S3 endpoint and Wharf's keys for it (radosgw, or the operator's external S3). */
export const testS3 = () => ({
  endpoint: required('WHARF_TEST_S3_ENDPOINT'),
  accessKey: required('WHARF_TEST_S3_ACCESS_KEY'),
  secretKey: required('WHARF_TEST_S3_SECRET_KEY'),
  region: process.env.WHARF_TEST_S3_REGION || 'us-east-1',
})
/** The test store as WHARF_S3_* settings (for loadConfig), or none when `make test` named no store. */
export function testS3Env(): Record<string, string> {
  if (!process.env.WHARF_TEST_S3_ENDPOINT) return {}
  const s3 = testS3()
  return { WHARF_S3_ENDPOINT: s3.endpoint, WHARF_S3_ACCESS_KEY: s3.accessKey, WHARF_S3_SECRET_KEY: s3.secretKey, WHARF_S3_REGION: s3.region }
}

/** A name unique to this test run, for streams, durables, schemas and databases. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`
}

/** A database of its own, dropped in teardown. Returns its URL. */
export async function freshDatabase(t: Test, prefix = 'ctl'): Promise<string> {
  const name = uniqueName(prefix).toLowerCase()
  const admin = new pg.Client({ connectionString: testPgUrl() })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: testPgUrl() })
    await c.connect()
    await c.query(`drop database if exists ${name} with (force)`)
    await c.end()
  })
  const url = new URL(testPgUrl())
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Polls `fn` every `everyMs` (default 100) until it answers something other than undefined or false,
 * and answers that; throws after `ms` (default 30_000) naming `what` and the last error `fn` threw.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
