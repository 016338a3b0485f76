import t from 'tap'
import { fold } from '../decider.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { claimDecider, domainStream } from './decider.js'

function rec(events: NewEvent[]): RecordedEvent[] {
  return events.map((e, i) => ({
    id: `${i}`,
    type: e.type,
    version: 1,
    stream: 'domain.x',
    occurredAt: '',
    actor: 'a',
    causationId: null,
    correlationId: 'c',
    data: e.data,
    seq: i + 1,
  }))
}
const when = (given: NewEvent[], c: Parameters<typeof claimDecider.decide>[0]) => claimDecider.decide(c, fold(claimDecider, rec(given)))
const d = 'shop.example.com'
const P = 'wharf.localhost'

t.test('claim stream id: domain.<32 hex>', (t) => {
  t.match(domainStream(d), /^domain\.[0-9a-f]{32}$/)
  t.not(domainStream(d), domainStream('other.example.com'))
  t.end()
})

t.test('a domain belongs to one app', (t) => {
  const claimed = when([], { type: 'Claim', domain: d, app: 'shop', holderStillUses: true, platformDomain: P })
  t.same(claimed, [{ type: 'DomainClaimed', data: { domain: d, app: 'shop' } }])
  t.same(when(claimed, { type: 'Claim', domain: d, app: 'shop', holderStillUses: true, platformDomain: P }), [], 'same app again: nothing')
  t.throws(() => when(claimed, { type: 'Claim', domain: d, app: 'blog', holderStillUses: true, platformDomain: P }), { code: 'WHARF_EXISTS' })
  t.same(
    when(claimed, { type: 'Claim', domain: d, app: 'blog', holderStillUses: false, platformDomain: P }).map((e) => e.type),
    ['DomainReleased', 'DomainClaimed'],
    'a stale claim is taken over',
  )
  const released = [...claimed, ...when(claimed, { type: 'Release', domain: d, app: 'shop' })]
  t.same(
    when(released, { type: 'Claim', domain: d, app: 'blog', holderStillUses: true, platformDomain: P }).map((e) => e.type),
    ['DomainClaimed'],
  )
  t.same(when(claimed, { type: 'Release', domain: d, app: 'blog' }), [], 'another app cannot release it')
  t.end()
})

t.test("the platform's own hosts are never claimed: WHARF_RESERVED", (t) => {
  for (const domain of [
    'wharf.wharf.localhost',
    'wharf.localhost',
    'shop.wharf.localhost',
    'a.b.wharf.localhost',
    'wharf-router-probe.invalid',
    'x.localhost',
    'printer.local',
  ]) {
    t.throws(() => when([], { type: 'Claim', domain, app: 'shop', holderStillUses: true, platformDomain: P }), { code: 'WHARF_RESERVED' }, domain)
  }
  t.throws(() => when([], { type: 'Claim', domain: 'WHARF.example.org', app: 'shop', holderStillUses: true, platformDomain: 'example.org' }), {
    code: 'WHARF_RESERVED',
  })
  t.same(
    when([], { type: 'Claim', domain: 'wharf.example.org', app: 'shop', holderStillUses: true, platformDomain: P }).map((e) => e.type),
    ['DomainClaimed'],
    'the same label under another domain is free',
  )
  t.same(
    when([], { type: 'Claim', domain: 'xexample.org', app: 'shop', holderStillUses: true, platformDomain: 'example.org' }).length,
    1,
    'a look-alike is not under it',
  )
  t.end()
})
