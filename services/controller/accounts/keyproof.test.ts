import t from 'tap'
import { challengeProblem, challengeText, KEY_PROOF_NAMESPACE, parseChallenge, signatureProblem } from './keyproof.js'

const MESSAGE = 'wharf-keys:v1 user=alice platform=wharf.localhost version=7 issued=1796600000000'
/** Made once with ssh-keygen (OpenSSH 9.2): `printf %s <message> | ssh-keygen -Y sign -n wharf-keys -f <key>`. */
const FIXTURES = {
  ed25519: {
    pub: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1btbB+6mOD1kb5wEi22ODQoQOr2rmzlLmoz90ryy1 fixture',
    sig: '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgZnVu1sH7qY4PWRvnASLbY4NChA\n6vaubOUuajP3SvLLUAAAAKd2hhcmYta2V5cwAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gt\nZWQyNTUxOQAAAEB16X3xf+tqHIN8KL/aRZIDbY8OvnfGuhzueNemzJPNHLfFZrBN5mN7sq\ndF4zNXMuLFqzaGNwLbwjwK85qEyO4F\n-----END SSH SIGNATURE-----\n',
  },
  rsa: {
    pub: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDXbXKmjOh+T4LONkZGzTgvUgS/g2ocZnVkf74GMfRUm8v/aGBC77WKKJvim9Um+zKeGURkoXD5oPKbfAUExCiqpy+3NL3skWLXq9ZozYuG9APS/lvF76LtvXtiGmEwdjepevfq9ipbSTUb79kQ+sYUrBkFAyw9+sTo9dpTk4y6Eomlqra2KabHdQhFrxrdQ5h/1FnvMdU76pK8WfFSBd0aMwU/Dsk6/3CaXCeHnt8BcBNsBaDJ0ZhoHeHArG/i7wS0I7m5nZXBk7epsxTYXQxWl2kXKfNl44ZMSLqHJvIeTrpv7JQqZGk3iK425aEyZ4GYMXWNNRUAZcQiCtIehvezmj9lXWCEB4YfdrzOQqeDUOb+YpusStvqtjYaIdBDe0q4g7Lq4H0xuOkBNnDXsyqjVf+ShZLlL0gaY3g36MBjyVIj2r9iCO1c8D7LejGxgwAa1PeS0fflV9p3fccRKPTX3VWlzLEGHv+sPBbAErOYFLgzPLJXkkFYD1wrL0MgPhk= fixture',
    sig: '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAZcAAAAHc3NoLXJzYQAAAAMBAAEAAAGBANdtcqaM6H5Pgs42RkbNOC\n9SBL+DahxmdWR/vgYx9FSby/9oYELvtYoom+Kb1Sb7Mp4ZRGShcPmg8pt8BQTEKKqnL7c0\nveyRYter1mjNi4b0A9L+W8Xvou29e2IaYTB2N6l69+r2KltJNRvv2RD6xhSsGQUDLD36xO\nj12lOTjLoSiaWqtrYppsd1CEWvGt1DmH/UWe8x1TvqkrxZ8VIF3RozBT8OyTr/cJpcJ4ee\n3wFwE2wFoMnRmGgd4cCsb+LvBLQjubmdlcGTt6mzFNhdDFaXaRcp82XjhkxIuocm8h5Oum\n/slCpkaTeIrjbloTJngZgxdY01FQBlxCIK0h6G97OaP2VdYIQHhh92vM5Cp4NQ5v5im6xK\n2+q2Nhoh0EN7SriDsurgfTG46QE2cNezKqNV/5KFkuUvSBpjeDfowGPJUiPav2II7VzwPs\nt6MbGDABrU95LR9+VX2nd9xxEo9NfdVaXMsQYe/6w8FsASs5gUuDM8sleSQVgPXCsvQyA+\nGQAAAAp3aGFyZi1rZXlzAAAAAAAAAAZzaGE1MTIAAAGUAAAADHJzYS1zaGEyLTUxMgAAAY\nANGflzYb37yZRTFwuHQPGTQ8csIviIJKlXW6es4ZcodDd6VKf4bAEq2xeKd0bd9K1ABIlE\nxhWMvNVyoGCPLfY016fKsqCdfbpAr9Rd4hEv3ULKjP5Km8Q0scPL5FtKsyPyaKn3PbZX2p\no7ULSAGphCRLiJmamZ5SlmrFlMN5QzJ0bJAWnSp/rwhgKjSTya6hA5Mo73R8pj85ySBDPe\nFslVyTLaYh8KKvklIa4u12I6TNW43stYRahsrDyKPzlJZpGrDKnUGQ1QyXQwDklhADxHxC\nLvPL8zrtVaAli/f580S8vKWnhSIBUIdOxLwQ93yAGR6ueAVky/+sRIe9n2iuIXYmBBI2Wz\nB5Gg4onQxpqQFuhaSLtNWP4AHHdzEZqGoe31G1mmBbO76ZRPApd6nJL9IichznNlDZlu26\n+GbuBV7QSGikNQoM63Lzsx7iwNP6jQbX5E/ULbG/anJ8QmShd8Q0CzCJCvRcj/uieC7yG0\nUPAeBLiZYYf00hHJ5QChB8o=\n-----END SSH SIGNATURE-----\n',
  },
  ecdsa: {
    pub: 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKLEapMF1xJlNU+2Sekhmk9xIjb+aFAWPoIiYacXpfZZFP5K9919D/WQy4qbDarGDLKIpNGccPpctg/xIvd7VDQ= fixture',
    sig: '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAGgAAAATZWNkc2Etc2hhMi1uaXN0cDI1NgAAAAhuaXN0cDI1NgAAAE\nEEosRqkwXXEmU1T7ZJ6SGaT3EiNv5oUBY+giJhpxel9lkU/kr33X0P9ZDLipsNqsYMsoik\n0Zxw+ly2D/Ei93tUNAAAAAp3aGFyZi1rZXlzAAAAAAAAAAZzaGE1MTIAAABlAAAAE2VjZH\nNhLXNoYTItbmlzdHAyNTYAAABKAAAAIQD3jRCmmf5NXxxdnCkFbswmXKzzjCjOIRXd8z+l\nRF1qbgAAACEA7Obt0NUOZluY9TNOWsPsEE3nAH8ha8ZGGu231ipLUWs=\n-----END SSH SIGNATURE-----\n',
  },
  other: {
    pub: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+hPgYxB/EiBkERxT6gV6kx14ixzquegXDpqp/Jzkyw other',
  },
  ns: {
    sig: '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgZnVu1sH7qY4PWRvnASLbY4NChA\n6vaubOUuajP3SvLLUAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5\nAAAAQC9Op87vmjhmiDLCpSwPzyOreazEqkesdRhZMQWBzhe/PrJKbZNfYIUM/jQ5J+/Ohe\nVlKZr7luQmvXPpXZ+zXQY=\n-----END SSH SIGNATURE-----\n',
  },
} as const

t.test('an SSH signature of the challenge by the key: ed25519, RSA (rsa-sha2-512), ECDSA', async (t) => {
  for (const type of ['ed25519', 'rsa', 'ecdsa'] as const) {
    const { pub, sig } = FIXTURES[type]
    t.equal(signatureProblem(sig, MESSAGE, KEY_PROOF_NAMESPACE, pub), undefined, `${type}: holds`)
    t.match(signatureProblem(sig, `${MESSAGE} `, KEY_PROOF_NAMESPACE, pub), /does not verify/, `${type}: another message`)
  }
  const { sig } = FIXTURES.ed25519
  t.match(signatureProblem(sig, MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.other.pub), /another key/, 'a signature by another key than the one added')
  t.match(signatureProblem(sig, MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.rsa.pub), /another key/)
  t.match(signatureProblem(FIXTURES.ns.sig, MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.ed25519.pub), /namespace "git"/, 'a signature for git, not wharf-keys')
  t.match(signatureProblem('hello', MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.ed25519.pub), /not an SSH signature/)
  const bytes = Buffer.from(sig.split('\n').slice(1, -2).join(''), 'base64')
  bytes[bytes.length - 5]! ^= 1
  const flipped = `-----BEGIN SSH SIGNATURE-----\n${bytes.toString('base64')}\n-----END SSH SIGNATURE-----\n`
  t.match(signatureProblem(flipped, MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.ed25519.pub), /does not verify/, 'a bit flipped in the signature')
  const cut = `-----BEGIN SSH SIGNATURE-----\n${bytes.subarray(0, 40).toString('base64')}\n-----END SSH SIGNATURE-----\n`
  t.match(signatureProblem(cut, MESSAGE, KEY_PROOF_NAMESPACE, FIXTURES.ed25519.pub), /cannot be read/, 'cut short')
})

t.test('a challenge names the user, the platform, the stream version and the time', async (t) => {
  const c = { username: 'alice', platform: 'wharf.localhost', version: 7, issuedAt: 1796600000000 }
  t.equal(challengeText(c), MESSAGE)
  t.same(parseChallenge(MESSAGE), c)
  t.equal(parseChallenge(`${MESSAGE}\n`), undefined)
  const now = c.issuedAt + 1000
  t.equal(challengeProblem(MESSAGE, { username: 'alice', platform: 'wharf.localhost', version: 7 }, now), undefined)
  t.match(challengeProblem(MESSAGE, { username: 'bob', platform: 'wharf.localhost', version: 7 }, now), /another user/)
  t.match(challengeProblem(MESSAGE, { username: 'alice', platform: 'other.example', version: 7 }, now), /another user or platform/)
  t.match(challengeProblem(MESSAGE, { username: 'alice', platform: 'wharf.localhost', version: 8 }, now), /stale/)
  t.match(challengeProblem(MESSAGE, { username: 'alice', platform: 'wharf.localhost', version: 7 }, now + 11 * 60_000), /expired/)
  t.match(challengeProblem('sign me', { username: 'alice', platform: 'wharf.localhost', version: 7 }, now), /not one this API gives/)
})
