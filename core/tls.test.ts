import { createPrivateKey } from 'node:crypto'
import t, { type Test } from 'tap'
import { certMaker } from '../test/certs.js'
import { covers, defaultCertName, keyMatches, MAX_CHAIN_BYTES, parseCertificate, validatePair } from './tls.js'

/** Asserts `fn` throws WHARF_INVALID with a message matching `message`. */
function refuses(t: Test, fn: () => unknown, message: RegExp, what: string) {
  t.throws(fn, { code: 'WHARF_INVALID', message }, what)
}

t.test('a current certificate and its key are taken, with names, dates and fingerprint', async (t) => {
  const { make } = certMaker(t)
  const c = make({ cn: 'Shop.Example.com', sans: ['shop.example.com', '*.shop.example.com'] })
  const v = validatePair(c.cert, c.key)
  t.equal(v.commonName, 'shop.example.com', 'the CN, lower-case')
  t.same(v.sans, ['shop.example.com', '*.shop.example.com'])
  t.match(v.fingerprint, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/)
  t.ok(Date.parse(v.notBefore) <= Date.now() && Date.parse(v.notAfter) > Date.now(), 'valid now')
  t.match(v.certificate, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/)
  t.match(v.privateKey, /^-----BEGIN PRIVATE KEY-----\n/, 'the key as PKCS#8')
  t.ok(keyMatches(c.cert, c.key))
  const rsa = make({ cn: 'rsa.example.com', rsa: true })
  t.equal(validatePair(rsa.cert, rsa.key).sans.length, 0, 'RSA, no SANs: taken (the CN names it)')
})

t.test('garbage, a mismatched key, an expired certificate: refused with one clear line', async (t) => {
  const { make } = certMaker(t)
  const c = make({ cn: 'shop.example.com', sans: ['shop.example.com'] })
  const other = make({ cn: 'other.example.com', sans: ['other.example.com'] })
  const rsa = make({ cn: 'rsa.example.com', rsa: true })
  refuses(t, () => validatePair('hello', c.key), /^no certificate: expected a PEM block/, 'not PEM')
  refuses(t, () => validatePair('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', c.key), /^the certificate does not parse/, 'a broken block')
  refuses(t, () => validatePair(c.cert, 'hello'), /^no private key/, 'no key')
  refuses(t, () => validatePair(c.cert, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /^the private key does not parse$/, 'a broken key')
  refuses(t, () => validatePair(c.cert, other.key), /^the key does not match the certificate$/, 'the key of another certificate')
  refuses(t, () => validatePair(c.cert, rsa.key), /^the key does not match the certificate$/, 'a key of another type')
  t.notOk(keyMatches(c.cert, other.key))
  t.notOk(keyMatches('garbage', c.key), 'keyMatches is false on garbage, never throws')
  refuses(t, () => validatePair(c.cert + c.key, c.key), /holds a private key/, 'a key inside the certificate file')
  const encrypted = createPrivateKey(c.key).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString()
  refuses(t, () => validatePair(c.cert, encrypted), /^the key is encrypted/, 'an encrypted key')
  refuses(t, () => validatePair(c.cert.repeat(Math.ceil(MAX_CHAIN_BYTES / c.cert.length) + 1), c.key), /larger than 64 KiB/, 'too large')
  refuses(t, () => validatePair(c.cert.repeat(11), c.key), /at most 10/, 'too many certificates')

  const old = make({ cn: 'old.example.com', sans: ['old.example.com'], expired: true })
  refuses(t, () => validatePair(old.cert, old.key), /^the certificate expired on 2020-01-02T00:00:00\.000Z$/, 'expired')
  t.equal(parseCertificate(old.cert).notAfter, '2020-01-02T00:00:00.000Z', 'parse alone does not judge dates')
  refuses(t, () => validatePair(c.cert, c.key, new Date(Date.now() - 86_400_000)), /^the certificate is not valid before /, 'not yet valid')
})

t.test('a chain goes leaf first, then each issuer', async (t) => {
  const { make } = certMaker(t)
  const ca = make({ cn: 'Wharf Test CA', ca: true })
  const leaf = make({ cn: 'shop.example.com', sans: ['shop.example.com'], issuer: ca })
  const v = validatePair(leaf.cert + ca.cert, leaf.key)
  t.equal(v.commonName, 'shop.example.com', 'the leaf names it')
  t.equal(v.certificate.match(/BEGIN CERTIFICATE/g)!.length, 2, 'the whole chain is kept')
  refuses(t, () => validatePair(ca.cert + leaf.cert, leaf.key), /^the chain is out of order: certificate 2 did not issue certificate 1/, 'CA first')
  const stranger = make({ cn: 'Other CA', ca: true })
  refuses(t, () => validatePair(leaf.cert + stranger.cert, leaf.key), /out of order/, 'an issuer that did not issue it')
})

t.test('covers: exact names and one-label wildcards; the CN only without SANs', async (t) => {
  const wild = { commonName: 'example.com', sans: ['*.example.com', 'example.com'] }
  t.ok(covers(wild, 'example.com'))
  t.ok(covers(wild, 'shop.example.com'))
  t.ok(covers(wild, 'Shop.Example.com'), 'case does not matter')
  t.notOk(covers(wild, 'a.shop.example.com'), 'a wildcard covers one label only')
  t.notOk(covers(wild, 'shop.example.org'))
  t.notOk(covers({ commonName: '', sans: ['*.example.com'] }, 'example.com'), 'not the apex')
  t.ok(covers({ commonName: 'shop.example.com', sans: [] }, 'shop.example.com'), 'the CN when there is no SAN')
  t.notOk(covers({ commonName: 'shop.example.com', sans: ['www.example.com'] }, 'shop.example.com'), 'the CN is ignored beside SANs (RFC 6125)')
  t.notOk(covers({ commonName: '', sans: [] }, 'shop.example.com'))
})

t.test('defaultCertName: from the first name, a valid cert name', async (t) => {
  t.equal(defaultCertName({ commonName: 'shop.example.com', sans: [] }), 'shop-example-com')
  t.equal(defaultCertName({ commonName: '', sans: ['*.example.com'] }), 'wildcard-example-com')
  t.equal(defaultCertName({ commonName: '1.example.com', sans: [] }), 'cert-1-example-com')
  t.ok(defaultCertName({ commonName: `${'a'.repeat(60)}.com`, sans: [] }).length <= 50)
})
