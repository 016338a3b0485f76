/**
 * The store's admin port without a store configured: it is made (the controller starts), and each
 * call fails with WHARF_UNAVAILABLE, as the admin routes answered before the port. With a store, the
 * admin routes' tests (backups.int, eventlog.int, cli/admin.e2e) go through it.
 */
import pg from 'pg'
import t from 'tap'
import { loadConfig } from '../../core/config.js'
import { createLogger } from '../../core/log.js'
import { MemoryEventStore } from '../../events/memory.js'
import { wharfCatalogue } from '../../domain/index.js'
import { platformStore } from './index.js'

t.test('without a store every call fails WHARF_UNAVAILABLE, naming what to set', async (t) => {
  const catalogue = wharfCatalogue()
  const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1:1/none' })
  t.teardown(() => pool.end())
  const port = platformStore({
    cfg: loadConfig({}),
    pool,
    store: new MemoryEventStore({ catalogue }),
    catalogue,
    log: createLogger({ level: 'silent' }),
    objects: undefined,
  })
  const ctx = { actor: 'user:alice' }
  const unavailable = { code: 'WHARF_UNAVAILABLE', message: /no store is configured/ }
  await t.rejects(port.backups(), unavailable)
  await t.rejects(port.backup({ trigger: 'manual', ...ctx }), unavailable)
  await t.rejects(port.restore('20260101-000000-abcd', ctx), unavailable)
  await t.rejects(port.exports(), unavailable)
  await t.rejects(port.exportEvents(ctx), unavailable)
  await t.rejects(port.importEvents('20260101-000000-abcd'), unavailable)
})
