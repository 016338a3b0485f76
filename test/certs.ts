/**
 * Certificates for tests, made by the system's `openssl` (3.x) in a temporary folder: self-signed
 * or issued by a test CA, current or long expired (`openssl ca -startdate/-enddate`, since
 * `-days` cannot be negative).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface TestCert {
  /** PEM of the certificate alone. */
  cert: string
  /** PEM of its private key (PKCS#8, unencrypted). */
  key: string
  certPath: string
  keyPath: string
}

export interface CertOptions {
  /** Subject CN, e.g. `shop.example.com`. */
  cn: string
  /** DNS subject alternative names (default: none). */
  sans?: string[]
  /** Valid only on 1-2 January 2020. */
  expired?: boolean
  /** Issued by this CA (default: self-signed). */
  issuer?: TestCert
  /** A CA certificate (basicConstraints CA:TRUE). */
  ca?: boolean
  /** An RSA key instead of EC P-256. */
  rsa?: boolean
}

/** A maker of test certificates in a folder removed at the test's end. */
export function certMaker(t: Test): { make(opts: CertOptions): TestCert; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let n = 0
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  return {
    dir,
    make(opts) {
      const id = `c${++n}`
      const [keyPath, certPath, csr] = [join(dir, `${id}.key`), join(dir, `${id}.crt`), join(dir, `${id}.csr`)]
      const keyArgs = opts.rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
      const ext = [
        ...(opts.sans?.length ? ['-addext', `subjectAltName=${opts.sans.map((s) => `DNS:${s}`).join(',')}`] : []),
        ...(opts.ca
          ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']
          : ['-addext', 'basicConstraints=CA:FALSE']),
      ]
      const subj = ['-subj', `/CN=${opts.cn}`]
      if (!opts.expired && !opts.issuer) {
        openssl(['req', '-x509', ...keyArgs, '-nodes', '-days', '2', ...subj, ...ext, '-keyout', keyPath, '-out', certPath])
      } else {
        openssl(['req', '-new', ...keyArgs, '-nodes', ...subj, ...ext, '-keyout', keyPath, '-out', csr])
        // `openssl ca` takes any dates; it needs a tiny database of its own.
        const db = join(dir, `${id}.db`)
        writeFileSync(db, '')
        writeFileSync(join(dir, `${id}.serial`), `${(0x1000 + n).toString(16).padStart(8, '0')}\n`)
        const cnf = join(dir, `${id}.cnf`)
        writeFileSync(
          cnf,
          [
            '[ca]',
            'default_ca = d',
            '[d]',
            `database = ${db}`,
            `new_certs_dir = ${dir}`,
            `serial = ${join(dir, `${id}.serial`)}`,
            'default_md = sha256',
            'policy = p',
            'copy_extensions = copy',
            'unique_subject = no',
            '[p]',
            'commonName = supplied',
            '',
          ].join('\n'),
        )
        const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '2']
        const signer = opts.issuer ? ['-cert', opts.issuer.certPath, '-keyfile', opts.issuer.keyPath] : ['-selfsign', '-keyfile', keyPath]
        openssl(['ca', '-batch', '-notext', '-config', cnf, ...signer, ...dates, '-in', csr, '-out', certPath])
      }
      return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath }
    },
  }
}
