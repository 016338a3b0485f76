import t from 'tap'
import { checkImageRef, dockerfileRefs, imageSource, isLocalRegistryHost } from './images.js'

t.test('imageSource: ids, registries, bare names', (t) => {
  t.same(imageSource('fa1f'), { kind: 'id' })
  t.same(imageSource('sha256:abc'), { kind: 'id' })
  t.same(imageSource('127.0.0.1:5000/shop:git-abc'), { kind: 'registry', host: '127.0.0.1:5000', repo: 'shop' })
  t.same(imageSource('localhost:5000/shop@sha256:00'), { kind: 'registry', host: 'localhost:5000', repo: 'shop' })
  t.same(imageSource('ghcr.io/a/b:1'), { kind: 'registry', host: 'ghcr.io', repo: 'a/b' })
  t.same(imageSource('busybox:latest'), { kind: 'bare', repo: 'busybox' })
  t.same(imageSource('library/node'), { kind: 'bare', repo: 'library/node' })
  t.same(imageSource('cafe:1'), { kind: 'bare', repo: 'cafe' }, 'hex with a tag is a name (the engine searches ids by the whole string)')
  for (const h of ['127.0.0.1:5000', 'localhost:5000', '[::1]:5000', '0.0.0.0:5000', 'x.localhost']) t.ok(isLocalRegistryHost(h), h)
  t.notOk(isLocalRegistryHost('ghcr.io'))
  t.end()
})

t.test('checkImageRef: refuses ids, variables and other apps of the platform registry', async (t) => {
  const mayUse = async (app: string) => app === 'bobapp'
  await t.rejects(checkImageRef('fa1f', mayUse), { code: 'WHARF_INVALID' })
  await t.rejects(checkImageRef('$X', mayUse), { code: 'WHARF_INVALID' })
  await t.rejects(checkImageRef('127.0.0.1:5000/shop:git-1', mayUse), { code: 'WHARF_FORBIDDEN' })
  await t.rejects(checkImageRef('127.0.0.1:5000/a/shop:1', mayUse), { code: 'WHARF_FORBIDDEN' }, 'not an app name')
  await t.resolves(checkImageRef('127.0.0.1:5000/bobapp:git-1', mayUse))
  await t.resolves(checkImageRef('busybox', mayUse))
  await t.resolves(checkImageRef('ghcr.io/x/y:1', mayUse))
})

t.test('dockerfileRefs: FROM (not stages), COPY --from, ADD URLs, continuations, escape directive', (t) => {
  const refs = dockerfileRefs(
    [
      '# a comment FROM nothing',
      'FROM --platform=linux/amd64 node:20 AS build',
      'COPY --from=build /a /b',
      'COPY --from=0 /a /b',
      'from build',
      'COPY --from=127.0.0.1:5000/shop:1 /x /y',
      'ADD local.txt http://example.com/a.tgz /dst/',
      'ADD ["https://example.com/b", "/dst"]',
      'ADD \\',
      '  http://10.0.0.1/c /d',
      'FROM scratch',
    ].join('\n'),
  )
  t.same(refs, [
    { kind: 'image', ref: 'node:20', line: 2 },
    { kind: 'image', ref: '127.0.0.1:5000/shop:1', line: 6 },
    { kind: 'url', url: 'http://example.com/a.tgz', line: 7 },
    { kind: 'url', url: 'https://example.com/b', line: 8 },
    { kind: 'url', url: 'http://10.0.0.1/c', line: 9 },
  ])
  t.same(dockerfileRefs('# escape=`\nFROM busybox\nADD `\n http://127.0.0.1/x /x\n'), [
    { kind: 'image', ref: 'busybox', line: 2 },
    { kind: 'url', url: 'http://127.0.0.1/x', line: 3 },
  ])
  t.end()
})
