import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { WharfError } from './errors.js'

/**
 * TLS certificates as Wharf takes them (`wharf certs:add`): a PEM chain, leaf first, and its
 * unencrypted private key. Pure (node:crypto only, no I/O): the controller validates with these and
 * the router renders with them.
 */

/** Largest certificate chain accepted, bytes of PEM (a long chain is ~10 KiB). */
export const MAX_CHAIN_BYTES = 64 * 1024
/** Most certificates in one chain (the leaf and its intermediates). */
export const MAX_CHAIN_CERTS = 10
/** Largest private key accepted, bytes of PEM (RSA 8192 is ~6.5 KiB). */
export const MAX_KEY_BYTES = 16 * 1024

/** What Wharf keeps of a certificate chain: the leaf's names and dates, and the chain as given. */
export interface ParsedCertificate {
  /** The leaf's subject CN, lower-case ('' when it has none or it is not a host name). */
  commonName: string
  /** The leaf's DNS subject alternative names, lower-case (`*.example.com` for a wildcard). */
  sans: string[]
  /** ISO 8601, UTC. */
  notBefore: string
  notAfter: string
  /** SHA-256 of the leaf's DER, upper-case hex pairs joined by `:` (as `openssl x509 -fingerprint -sha256`). */
  fingerprint: string
  /** The chain, leaf first, each block re-encoded as PEM (anything between the blocks dropped). */
  certificate: string
}

/** A certificate with its key, both checked: what `CertAdded` carries. */
export interface ValidatedPair extends ParsedCertificate {
  /** The private key, PKCS#8 PEM. */
  privateKey: string
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g
const HOST = /^(?=.{1,253}$)(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/

function invalid(message: string, details?: Record<string, unknown>): WharfError {
  return new WharfError('WHARF_INVALID', message, details ? { details } : {})
}

/** `X509Certificate` dates (`Jan  2 00:00:00 2020 GMT`) to ISO 8601. */
function iso(date: string): string {
  return new Date(date).toISOString()
}

/** The CN of a subject as node prints it (`C=..\nCN=shop.example.com\nO=..`). */
function commonNameOf(subject: string): string {
  const line = subject.split('\n').find((l) => l.startsWith('CN='))
  const cn = line?.slice(3).trim().toLowerCase() ?? ''
  return HOST.test(cn) ? cn : ''
}

/** The DNS names of `subjectAltName` (`DNS:a.example.com, IP Address:10.0.0.1, DNS:b.example.com`). */
function dnsNamesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return []
  const names = subjectAltName
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).trim().toLowerCase())
    .filter((s) => HOST.test(s))
  return [...new Set(names)]
}

/** The certificates of a PEM chain, in the order given; throws `WHARF_INVALID` on anything else. */
export function parseChain(pem: string): X509Certificate[] {
  if (Buffer.byteLength(pem) > MAX_CHAIN_BYTES) throw invalid(`the certificate chain is larger than ${MAX_CHAIN_BYTES / 1024} KiB`)
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem))
    throw invalid('the certificate file holds a private key: give the key apart (wharf certs:add <cert.pem> <key.pem>)')
  const blocks = pem.match(CERT_BLOCK) ?? []
  if (blocks.length === 0) throw invalid('no certificate: expected a PEM block "-----BEGIN CERTIFICATE-----"')
  if (blocks.length > MAX_CHAIN_CERTS) throw invalid(`the chain has ${blocks.length} certificates; at most ${MAX_CHAIN_CERTS}`)
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b)
    } catch {
      throw invalid(blocks.length === 1 ? 'the certificate does not parse (not a PEM X.509 certificate)' : `certificate ${i + 1} of the chain does not parse`)
    }
  })
}

/**
 * Parses a PEM chain (leaf first, then the certificates that issued it, in order). Throws
 * `WHARF_INVALID` with one line saying what is wrong: garbage, too large, a chain out of order.
 * Dates are not checked here (see {@link validatePair}).
 */
export function parseCertificate(pem: string): ParsedCertificate {
  const chain = parseChain(pem)
  for (let i = 0; i + 1 < chain.length; i++) {
    const [cert, issuer] = [chain[i]!, chain[i + 1]!]
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw invalid(`the chain is out of order: certificate ${i + 2} did not issue certificate ${i + 1} (put the server's certificate first, then each issuer)`)
    }
  }
  const leaf = chain[0]!
  const parsed: ParsedCertificate = {
    commonName: commonNameOf(leaf.subject),
    sans: dnsNamesOf(leaf.subjectAltName),
    notBefore: iso(leaf.validFrom),
    notAfter: iso(leaf.validTo),
    fingerprint: leaf.fingerprint256,
    certificate: `${chain.map((c) => c.toString().trim()).join('\n')}\n`,
  }
  if (!parsed.commonName && parsed.sans.length === 0) throw invalid('the certificate names no host name (no DNS subject alternative name and no CN)')
  return parsed
}

/** The private key of a PEM; throws `WHARF_INVALID` on garbage, an encrypted key or a public key. */
export function parsePrivateKey(pem: string): KeyObject {
  if (Buffer.byteLength(pem) > MAX_KEY_BYTES) throw invalid(`the key is larger than ${MAX_KEY_BYTES / 1024} KiB`)
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw invalid('the key is encrypted: give it without a passphrase (openssl pkey -in key.pem -out plain.pem)')
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw invalid('no private key: expected a PEM block "-----BEGIN PRIVATE KEY-----"')
  try {
    return createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    throw invalid('the private key does not parse')
  }
}

/** Whether `keyPem` is the private key of the leaf of `certPem` (false on anything that does not parse). */
export function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return parseChain(certPem)[0]!.checkPrivateKey(parsePrivateKey(keyPem))
  } catch {
    return false
  }
}

/**
 * Checks a certificate chain and its key for `certs:add`: both parse, the key is the leaf's, and the
 * leaf is valid at `now`. Throws `WHARF_INVALID` with one clear line otherwise.
 */
export function validatePair(certPem: string, keyPem: string, now: Date = new Date()): ValidatedPair {
  const cert = parseCertificate(certPem)
  const key = parsePrivateKey(keyPem)
  if (!parseChain(cert.certificate)[0]!.checkPrivateKey(key)) throw invalid('the key does not match the certificate')
  if (Date.parse(cert.notAfter) <= now.getTime()) throw invalid(`the certificate expired on ${cert.notAfter}`, { notAfter: cert.notAfter })
  if (Date.parse(cert.notBefore) > now.getTime()) throw invalid(`the certificate is not valid before ${cert.notBefore}`, { notBefore: cert.notBefore })
  return { ...cert, privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString() }
}

/**
 * Whether a certificate is good for `domain`: one of its names equals it, or is a wildcard
 * (`*.example.com`) over exactly one more label (`a.example.com`, not `example.com` nor
 * `a.b.example.com`). As browsers do (RFC 6125), the CN counts only when there is no DNS SAN.
 */
export function covers(cert: Pick<ParsedCertificate, 'commonName' | 'sans'>, domain: string): boolean {
  const host = domain.toLowerCase()
  const names = cert.sans.length > 0 ? cert.sans : cert.commonName ? [cert.commonName] : []
  return names.some((name) => {
    if (!name.startsWith('*.')) return name === host
    const dot = host.indexOf('.')
    return dot > 0 && host.slice(dot + 1) === name.slice(2)
  })
}

/** A default name for a certificate: its first name with dots as dashes (`*.` as `wildcard-`), at most 50 characters. */
export function defaultCertName(cert: Pick<ParsedCertificate, 'commonName' | 'sans'>): string {
  const first = cert.commonName || cert.sans[0] || 'cert'
  const name = first.replace(/^\*\./, 'wildcard.').replace(/\./g, '-').slice(0, 50).replace(/-+$/, '')
  return /^[a-z]/.test(name) ? name : `cert-${name}`.slice(0, 50).replace(/-+$/, '')
}
