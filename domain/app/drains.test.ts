import t from 'tap'
import { drainId, parseDrainUrl } from './drains.js'

t.test('drain URLs: the three kinds, and what is refused', async (t) => {
  t.same(parseDrainUrl(' syslog://logs.example.com:514 '), { kind: 'syslog', url: 'syslog://logs.example.com:514', host: 'logs.example.com', port: 514 })
  t.same(parseDrainUrl('syslog+tls://127.0.0.1:6514'), { kind: 'syslog+tls', url: 'syslog+tls://127.0.0.1:6514', host: '127.0.0.1', port: 6514 })
  t.match(parseDrainUrl('https://user:token@logs.example.com/drain?x=1'), { kind: 'https', host: 'logs.example.com', port: 443 })
  t.match(parseDrainUrl('https://[::1]:8443/x'), { host: '::1', port: 8443 })
  for (const [bad, why] of [
    ['', /needs a URL/],
    ['http://logs.example.com/', /syslog:\/\/, syslog\+tls:\/\/ or https:\/\/, not http:/],
    ['ftp://x:1', /not ftp:/],
    ['syslog://logs.example.com', /needs a port/],
    ['syslog://u:p@logs.example.com:514', /no user, path or query/],
    ['syslog://logs.example.com:514/path', /no user, path or query/],
    ['syslog://logs.example.com:99999', /not a URL/],
    ['not a url', /no spaces/],
    ['nonsense', /not a URL/],
    [`https://x/${'a'.repeat(3000)}`, /at most 2048/],
  ] as const) {
    t.throws(() => parseDrainUrl(bad), { code: 'WHARF_INVALID', message: why }, JSON.stringify(bad.slice(0, 40)))
  }
})

t.test('drain ids: stable per URL', async (t) => {
  t.match(drainId('syslog://a:1'), /^d\.[0-9a-f]{12}$/)
  t.equal(drainId('syslog://a:1'), drainId(' syslog://a:1'))
  t.not(drainId('syslog://a:1'), drainId('syslog://a:2'))
})
