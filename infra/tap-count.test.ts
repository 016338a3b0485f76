import t from 'tap'
import { countTap } from './tap-count.js'

const stream = `TAP version 14
1..3
# Subtest: a.test.ts
    # Subtest: first
        ok 1 - expected to throw
        1..1
    ok 1 - first # time=1ms
    # Subtest: second
        not ok 1 - should be equal
        1..1
    not ok 2 - second # time=1ms
    # Subtest: group
        # Subtest: inner
            ok 1 - fine
            1..1
        ok 1 - inner
        # Subtest: skipped one
            1..0
        ok 2 - skipped one # SKIP no engine
        1..2
    ok 3 - group
    1..3
not ok 1 - a.test.ts
# Subtest: b.test.ts
    ok 1 - top-level assertion
    1..1
ok 2 - b.test.ts
# Subtest: c.test.ts
    # Subtest: passes
        ok 1 - yes
        1..1
    ok 1 - passes
    not ok 2 - timeout!
    1..2
not ok 3 - c.test.ts
`

t.test('counts leaf tests, skips, and failures of files that crashed after passing subtests', async (t) => {
  const c = countTap(stream)
  t.equal(c.passed, 4, 'first, inner, b.test.ts, passes')
  t.equal(c.skipped, 1)
  t.equal(c.failed, 2, 'second, and c.test.ts whose own point failed')
  t.same(c.failures, ['a.test.ts > second', 'c.test.ts'])
})

t.test('an empty stream counts nothing', async (t) => {
  t.same(countTap(''), { passed: 0, failed: 0, skipped: 0, failures: [] })
})
