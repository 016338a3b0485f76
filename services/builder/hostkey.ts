import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { hostKeyPath } from '../../core/paths.js'

const parses = (key: string) => !(ssh2.utils.parseKey(key) instanceof Error)

/**
 * A new ed25519 key pair (OpenSSH format) that ssh2 reads back. ssh2's generator strips the leading
 * zero bytes of the public key, so about one pair in 256 is malformed (mscdex/ssh2#1390, #1513):
 * such a pair is made again.
 */
export function generateHostKey(comment = 'wharf-builder'): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment })
    if (parses(pair.private) && parses(pair.public)) return pair
  }
}

/**
 * The builder's SSH host key, made once under `$WHARF_HOME/builder/` and kept, so clients that
 * trusted it keep trusting it. Answers the private key (OpenSSH format) and the public line. A kept
 * key that does not parse (one of ssh2's malformed pairs, which no server could ever use, so no
 * client trusts it) is made again.
 */
export function ensureHostKey(home: string): { privateKey: string; publicKey: string; path: string } {
  const path = hostKeyPath(home)
  const kept = (file: string) => existsSync(file) && parses(readFileSync(file, 'utf8'))
  if (existsSync(path) && !(kept(path) && kept(`${path}.pub`))) rmSync(path)
  if (!existsSync(path)) {
    mkdirSync(join(home, 'builder'), { recursive: true, mode: 0o700 })
    const pair = generateHostKey()
    writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 })
    writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' })
  }
  return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim(), path }
}
