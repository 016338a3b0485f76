/** For the store's integration tests: a platform with some history, and its read models as data. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import type { Test } from 'tap'
import { ensureImportToken } from '../../core/import-token.js'
import { readModelRows } from '../../projections/testing/rows.js'
import { registerAndLogin, startTestController, type TestController } from '../controller/testing.js'

/** Types the store itself records: left out when read models of two platforms are compared. */
export const STORE_EVENTS = ['BackupCompleted', 'BackupFailed', 'BackupRestored', 'BackupDeleted', 'EventsExported']

/**
 * Some history through the API: root (the admin), alice and bob; alice's app `shop` with config (one
 * key set and unset again), a custom domain, bob as collaborator, maintenance on and off; root's app
 * `other`. Answers root's token.
 */
export async function populate(c: TestController): Promise<{ root: string; alice: string }> {
  const root = await registerAndLogin(c, 'root')
  const alice = await registerAndLogin(c, 'alice')
  await registerAndLogin(c, 'bob')
  const must = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await c.call(method, path, { token, ...(body === undefined ? {} : { body }) })
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }
  await must('POST', '/v1/apps', alice, { name: 'shop' })
  await must('POST', '/v1/apps/shop/config', alice, { values: { DATABASE_URL: 'postgres://db/shop', WORKERS: '4', GONE: 'soon' } })
  await must('POST', '/v1/apps/shop/config/unset', alice, { keys: ['GONE'] })
  await must('POST', '/v1/apps/shop/domains', alice, { domain: 'shop.example.com' })
  await must('POST', '/v1/apps/shop/perms', alice, { username: 'bob' })
  await must('POST', '/v1/apps/shop/maintenance', alice, { enabled: true })
  await must('POST', '/v1/apps/shop/maintenance', alice, { enabled: false })
  await must('POST', '/v1/apps', root, { name: 'other' })
  await must('POST', '/v1/apps/other/config', root, { values: { MODE: 'test' } })
  return { root, alice }
}

/**
 * Every row of every read model (`rm_*` schemas), as JSON text in a stable order, by `schema.table`.
 * `skipEvents`: event types left out of the event log's rows.
 */
export function readModels(pool: pg.Pool, skipEvents: readonly string[] = STORE_EVENTS): Promise<Record<string, string[]>> {
  return readModelRows(pool, skipEvents)
}

/**
 * A new platform to import into: a home of its own (with the one-time import token `make up` would
 * have made) and `WHARF_IMPORT_FROM` naming the exporting platform's namespace. Answers it and the token.
 */
export async function importTarget(t: Test, fromNamespace: string): Promise<{ c: TestController; importToken: string }> {
  const home = mkdtempSync(join(tmpdir(), 'wharf-import-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const c = await startTestController(t, { WHARF_HOME: home, WHARF_IMPORT_FROM: fromNamespace })
  return { c, importToken: ensureImportToken(home) }
}
