import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { claimStreamId } from '../../../events/index.js'
import { defaultKeyName, parsePublicKey } from './keys.js'
import { hashPassword, hashToken, newToken, verifyPassword } from './secrets.js'

t.test('passwords: scrypt with a random salt', async (t) => {
  const h1 = await hashPassword('correct horse')
  const h2 = await hashPassword('correct horse')
  t.match(h1, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/)
  t.not(h1, h2, 'salted')
  t.notOk(h1.includes('correct horse'))
  t.equal(await verifyPassword('correct horse', h1), true)
  t.equal(await verifyPassword('correct horsf', h1), false)
  t.equal(await verifyPassword('correct horse', undefined), false, 'no user')
  t.equal(await verifyPassword('x', 'garbage'), false)
})

t.test('tokens: 32 random bytes, kept as SHA-256', async (t) => {
  const tok = newToken()
  t.match(tok, /^[A-Za-z0-9_-]{43}$/)
  t.not(newToken(), tok)
  t.match(hashToken(tok), /^[0-9a-f]{64}$/)
  t.equal(hashToken(tok), hashToken(tok))
})

t.test('public keys: fingerprints as ssh-keygen prints them; private keys and garbage refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const type of ['ed25519', 'rsa', 'ecdsa']) {
    const file = join(dir, type)
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `me@${type}`, '-f', file])
    const pub = readFileSync(`${file}.pub`, 'utf8')
    const fp = execFileSync('ssh-keygen', ['-lf', `${file}.pub`])
      .toString()
      .split(' ')[1]
    const key = parsePublicKey(pub)
    t.equal(key.fingerprint, fp, `${type} fingerprint`)
    t.equal(key.comment, `me@${type}`)
    t.equal(defaultKeyName(key), `me@${type}`)
    t.equal(key.openssh, pub.split(' ').slice(0, 2).join(' '))
    t.throws(() => parsePublicKey(readFileSync(file, 'utf8')), { code: 'WHARF_INVALID' }, `${type} private key refused`)
  }
  for (const garbage of ['', 'hello', 'ssh-ed25519 AAAA', 'ssh-ed25519 !!!notbase64', '-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----']) {
    t.throws(() => parsePublicKey(garbage), { code: 'WHARF_INVALID' }, JSON.stringify(garbage))
  }
  t.match(claimStreamId('key', 'SHA256:abc'), /^key\.[0-9a-f]{32}$/)
  t.equal(defaultKeyName({ type: 'ssh-ed25519', fingerprint: `SHA256:${'A'.repeat(43)}`, openssh: '', comment: 'has space' }), 'ssh-ed25519-AAAAAAAA')
})
