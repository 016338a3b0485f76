import t from 'tap'
import { APP_NAME_RE, PROCESS_TYPE_RE } from './app/names.js'
import { CertHostName } from './app/certs.js'
import { DomainName } from './app/events.js'
import { GIT_SHA_RE } from './build/names.js'
import { HOST_NAME_RE } from './host/names.js'
import { STORE_OBJECT_ID_RE } from './platform/names.js'
import { StoreObjectId } from './platform/events.js'
import { AppName, ProcessType, Sha, UserName } from './schema.js'
import { KEY_NAME_RE, USER_NAME_RE } from './user/names.js'
import { KeyName } from './user/events.js'

/** A string schema's `pattern` (what fastify and the catalogue check). */
const patternOf = (schema: object): string => ('pattern' in schema && typeof schema.pattern === 'string' ? schema.pattern : '')

t.test('each schema carries the one pattern of its name', async (t) => {
  const pairs: [object, RegExp][] = [
    [AppName, APP_NAME_RE],
    [ProcessType, PROCESS_TYPE_RE],
    [DomainName, HOST_NAME_RE],
    [UserName, USER_NAME_RE],
    [KeyName, KEY_NAME_RE],
    [Sha, GIT_SHA_RE],
    [StoreObjectId, STORE_OBJECT_ID_RE],
  ]
  for (const [schema, re] of pairs) t.equal(patternOf(schema), re.source)
})

t.test('app names', async (t) => {
  for (const ok of ['shop', 'a', 'my-shop-2', 'x1']) t.ok(APP_NAME_RE.test(ok), ok)
  for (const bad of ['', 'Shop', '1shop', 'shop-', '-shop', 'my--shop', 'my_shop', 'shop.example']) t.notOk(APP_NAME_RE.test(bad), JSON.stringify(bad))
})

t.test('process types', async (t) => {
  for (const ok of ['web', 'worker_2', 'clock-1', 'a'.repeat(30)]) t.ok(PROCESS_TYPE_RE.test(ok), ok)
  for (const bad of ['', 'Web', '1web', 'a'.repeat(31), 'web.1']) t.notOk(PROCESS_TYPE_RE.test(bad), JSON.stringify(bad))
})

t.test('host names, and the wildcard a certificate may name', async (t) => {
  const wildcard = new RegExp(patternOf(CertHostName))
  for (const ok of ['example.com', 'a.b.example.com', 'x-1.example.io']) {
    t.ok(HOST_NAME_RE.test(ok), ok)
    t.ok(wildcard.test(ok), ok)
  }
  for (const bad of ['localhost', 'Example.com', '-a.example.com', 'a-.example.com', 'a..com', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`]) {
    t.notOk(HOST_NAME_RE.test(bad), bad)
  }
  t.notOk(HOST_NAME_RE.test('*.example.com'))
  t.ok(wildcard.test('*.example.com'))
  t.notOk(wildcard.test('*.*.example.com'))
})
