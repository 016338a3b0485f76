import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import ssh2 from 'ssh2'
import { hostKeyPath } from '../../core/paths.js'
import { ensureHostKey, generateHostKey } from './hostkey.js'

const parses = (key: string) => !(ssh2.utils.parseKey(key) instanceof Error)

/** One of the pairs ssh2 makes malformed (about 1 in 256). */
function malformedPair(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519')
    if (!parses(pair.private) || !parses(pair.public)) return pair
  }
}

t.test('every generated host key parses, private and public (ssh2 alone fails about 1 in 256)', async (t) => {
  let bad = 0
  for (let i = 0; i < 2_000; i++) {
    const pair = generateHostKey()
    if (!parses(pair.private) || !parses(pair.public)) bad++
  }
  t.equal(bad, 0)
})

t.test('a kept host key is kept; a kept one that does not parse is made again', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-hostkey-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const first = ensureHostKey(home)
  t.same(ensureHostKey(home), first, 'the same key on the next start')

  const broken = malformedPair()
  mkdirSync(join(home, 'builder'), { recursive: true })
  writeFileSync(hostKeyPath(home), broken.private)
  writeFileSync(`${hostKeyPath(home)}.pub`, `${broken.public}\n`)
  const again = ensureHostKey(home)
  t.not(again.privateKey, broken.private, 'a new key')
  t.ok(parses(again.privateKey) && parses(again.publicKey), 'that parses')
  t.equal(readFileSync(`${hostKeyPath(home)}.pub`, 'utf8').trim(), again.publicKey, 'the public key beside it is the new one')
})
