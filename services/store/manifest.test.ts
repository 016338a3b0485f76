import t from 'tap'
import type { BackupManifest } from '../../core/backups.js'
import { checkDumpSchemas, checkSamePlatform, keysOf, newObjectId, parseBackupManifest, parseExportManifest } from './manifest.js'

const ID = '20261202-190159-ab12'
const manifest: BackupManifest = {
  format: 'wharf-backup/1',
  id: ID,
  createdAt: '2026-12-02T19:01:59.123Z',
  trigger: 'manual',
  actor: 'user:root',
  namespace: 'wharf',
  platform: '0193a1b2-0000-7000-8000-000000000001',
  lastSeq: 40,
  checkpoints: [
    { name: 'apps', version: 1, seq: 40, status: 'running' },
    { name: 'users', version: 2, seq: 38, status: 'running' },
  ],
  schemas: ['rm_apps', 'wharf'],
  dump: { key: `wharf/${ID}.dump`, bytes: 2048, sha256: 'a'.repeat(64), tool: 'pg_dump (PostgreSQL) 15.18' },
  tookMs: 120,
}

/** `pg_restore --list` of `pg_dump -Fc -n wharf -n 'rm_*'` (PostgreSQL 15.18). */
const TOC = `;
; Archive created at 2026-12-02 19:01:59 UTC
;     dbname: postgres
;
; Selected TOC Entries:
;
7; 2615 16392 SCHEMA - rm_apps postgres
6; 2615 16384 SCHEMA - wharf postgres
217; 1259 16393 TABLE rm_apps apps postgres
216; 1259 16385 TABLE wharf projection_checkpoints postgres
3353; 0 16393 TABLE DATA rm_apps apps postgres
3352; 0 16385 TABLE DATA wharf projection_checkpoints postgres
3209; 2606 16399 CONSTRAINT rm_apps apps apps_pkey postgres
3206; 2606 16391 CONSTRAINT wharf projection_checkpoints projection_checkpoints_pkey postgres
3207; 1259 16400 INDEX rm_apps apps_owner postgres
`

t.test('ids sort by time and name their keys', async (t) => {
  const id = newObjectId(new Date('2026-12-02T19:01:59.999Z'))
  t.match(id, /^20261202-190159-[0-9a-f]{4}$/)
  t.same(keysOf('wharf', id, 'dump'), { data: `wharf/${id}.dump`, manifest: `wharf/${id}.json` })
})

t.test('a backup manifest: the good one parses, anything else is WHARF_BACKUP_CORRUPT with the reason', async (t) => {
  t.same(parseBackupManifest(ID, JSON.stringify(manifest)), manifest)
  const bad = (text: string, why: RegExp) => t.throws(() => parseBackupManifest(ID, text), { code: 'WHARF_BACKUP_CORRUPT', message: why })
  bad('{ nope', /its manifest is not JSON/)
  bad('null', /not a wharf-backup\/1 manifest \(format null\)/)
  bad(JSON.stringify({ ...manifest, format: 'wharf-events/1' }), /not a wharf-backup\/1 manifest \(format "wharf-events\/1"\)/)
  bad(JSON.stringify({ ...manifest, dump: { ...manifest.dump, sha256: 'xyz' } }), /its manifest is malformed \(\/dump\/sha256/)
  bad(JSON.stringify({ ...manifest, schemas: ['public', 'wharf'] }), /malformed \(\/schemas\/0/)
  bad(JSON.stringify({ ...manifest, schemas: ['rm_apps'] }), /holds no projection checkpoints/)
  bad(JSON.stringify({ ...manifest, id: '20200101-000000-0000' }), /names another id/)
})

t.test('an export manifest claims every event from seq 1', async (t) => {
  const m = {
    format: 'wharf-events/1',
    id: ID,
    createdAt: manifest.createdAt,
    actor: 'user:root',
    namespace: 'wharf',
    platform: 'p',
    events: 3,
    lastSeq: 3,
    ndjson: { key: 'k', bytes: 10, sha256: 'b'.repeat(64) },
    tookMs: 1,
  }
  t.same(parseExportManifest(ID, JSON.stringify(m)), m)
  t.throws(() => parseExportManifest(ID, JSON.stringify({ ...m, events: 2 })), { code: 'WHARF_BACKUP_CORRUPT', message: /claims 2 events up to seq 3/ })
  t.same(parseExportManifest(ID, JSON.stringify({ ...m, events: 5 })), { ...m, events: 5 }, 'more events than seqs: commits of several events')
})

t.test('a backup restores only onto the platform (event log) it was taken of', async (t) => {
  checkSamePlatform(manifest, { platform: manifest.platform, lastSeq: 40 })
  checkSamePlatform(manifest, { platform: manifest.platform, lastSeq: 90 })
  t.throws(() => checkSamePlatform(manifest, { platform: 'another-first-event', lastSeq: 90 }), {
    code: 'WHARF_BACKUP_FOREIGN',
    message: /its event log starts with event 0193a1b2-.+, this one with another-first-event/,
  })
  t.throws(() => checkSamePlatform(manifest, { platform: undefined, lastSeq: 0 }), { code: 'WHARF_BACKUP_FOREIGN', message: /this event log is empty/ })
  t.throws(() => checkSamePlatform(manifest, { platform: manifest.platform, lastSeq: 39 }), {
    code: 'WHARF_BACKUP_FOREIGN',
    message: /taken at seq 40, and this event log ends at 39/,
  })
})

t.test("a dump must hold exactly Wharf's schemas, as its manifest says", async (t) => {
  t.same(checkDumpSchemas(manifest, TOC), ['rm_apps', 'wharf'])
  // A whole-database dump: a table in public, which is no schema of Wharf's.
  const whole = `${TOC}218; 1259 16401 TABLE public other postgres\n3355; 0 16401 TABLE DATA public other postgres\n`
  t.throws(() => checkDumpSchemas(manifest, whole), { code: 'WHARF_BACKUP_CORRUPT', message: /schemas Wharf does not own \(public\)/ })
  t.throws(() => checkDumpSchemas({ ...manifest, schemas: ['rm_apps', 'rm_users', 'wharf'] }, TOC), {
    code: 'WHARF_BACKUP_CORRUPT',
    message: /holds schemas rm_apps, wharf, its manifest says rm_apps, rm_users, wharf/,
  })
  t.throws(() => checkDumpSchemas(manifest, ';\n; nothing\n'), { code: 'WHARF_BACKUP_CORRUPT', message: /holds schemas none/ })
})
