/**
 * certs:* as a user runs them: `node bin/wharf` (compiled: `npx tsc -p .` first) against a
 * controller of its own, with certificates made by openssl.
 */
import t from 'tap'
import { registerAndLogin, startTestController } from '../../services/controller/testing.js'
import { certMaker } from '../../test/certs.js'
import { cli, fails, ok, requireBuilt } from '../testing.js'

t.test('certs:add, certs:list, certs:attach, certs:detach, certs:remove through bin/wharf', async (t) => {
  requireBuilt()
  const c = await startTestController(t)
  const { make } = certMaker(t)
  const alice = cli(t, c.url, await registerAndLogin(c, 'alice'))
  await ok(t, alice.run(['apps:create', 'shop', '--no-remote']), 'apps:create')
  await ok(t, alice.run(['domains:add', 'shop.example.com', '-a', 'shop']), 'domains:add')
  const cert = make({ cn: 'shop.example.com', sans: ['shop.example.com', 'www.example.com'] })
  const other = make({ cn: 'other.example.com', sans: ['other.example.com'] })
  const old = make({ cn: 'old.example.com', sans: ['old.example.com'], expired: true })

  const added = await ok(t, alice.run(['certs:add', cert.certPath, cert.keyPath, '--name', 'main', '-a', 'shop']), 'certs:add')
  t.match(added.stdout, /^Added main \(shop\.example\.com, expires \d{4}-\d\d-\d\d\)\./)
  const mismatch = await fails(t, alice.run(['certs:add', cert.certPath, other.keyPath, '-a', 'shop']), 'WHARF_INVALID', 'a key of another certificate')
  t.match(mismatch.stderr, /the key does not match the certificate/)
  const expired = await fails(t, alice.run(['certs:add', old.certPath, old.keyPath, '-a', 'shop']), 'WHARF_INVALID', 'an expired certificate')
  t.match(expired.stderr, /the certificate expired on 2020-01-02/)
  await fails(t, alice.run(['certs:add', '/nonexistent.pem', cert.keyPath, '-a', 'shop']), 'WHARF_INVALID', 'a missing file')

  await ok(t, alice.run(['certs:attach', 'main', 'shop.example.com', '-a', 'shop']), 'certs:attach')
  const notMine = await fails(t, alice.run(['certs:attach', 'main', 'www.example.com', '-a', 'shop']), 'WHARF_INVALID', 'a domain the app does not have')
  t.match(notMine.stderr, /www\.example\.com is not a domain of shop/)
  const table = await ok(t, alice.run(['certs:list', '-a', 'shop']), 'certs:list')
  t.match(table.stdout, /^NAME\s+COMMON NAME\s+SANS\s+EXPIRES\s+DOMAINS\n/)
  t.match(table.stdout, /main\s+shop\.example\.com\s+shop\.example\.com, www\.example\.com\s+\d{4}-\d\d-\d\d\s+shop\.example\.com/)
  const json = JSON.parse((await ok(t, alice.run(['certs:list', '-a', 'shop', '--json']), 'certs:list --json')).stdout)
  t.match(json.certs, [{ name: 'main', domains: ['shop.example.com'] }])
  t.notMatch(JSON.stringify(json), /PRIVATE KEY/, 'no key in the JSON')

  await ok(t, alice.run(['certs:detach', 'main', 'shop.example.com', '-a', 'shop']), 'certs:detach')
  await ok(t, alice.run(['certs:attach', 'main', 'shop.example.com', '-a', 'shop']), 'certs:attach again')
  const removed = await ok(t, alice.run(['certs:remove', 'main', '-a', 'shop']), 'certs:remove')
  t.match(removed.stdout, 'Removed main (detached from shop.example.com).')
  t.match((await ok(t, alice.run(['certs:list', '-a', 'shop']), 'certs:list')).stdout, 'No certificates.')
  await fails(t, alice.run(['certs:remove', 'main', '-a', 'shop']), 'WHARF_NOT_FOUND', 'remove twice')
})
