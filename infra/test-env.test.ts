import t from 'tap'
import { lanesOf } from './test-env.js'
import { TapCounter } from './tap-count.js'

t.test('files that use the shared engine, nginx or registry, or infra/, run in the shared lane; the rest beside', async (t) => {
  const files: Record<string, string> = {
    'infra/hosts.int.test.ts': "import t from 'tap'",
    'services/builder/x.int.test.ts': 'const d = testDocker()',
    'services/router/y.int.test.ts': 'await startTestRouter(t, c)',
    'cli/z.e2e.test.ts': 'process.env.WHARF_TEST_REGISTRY',
    'services/controller/routes/a.int.test.ts': 'await startTestController(t)',
    'core/b.test.ts': "t.equal(1, 1, 'DockerEngines are not named here')",
  }
  t.same(
    lanesOf(Object.keys(files), (f) => files[f]!),
    {
      shared: ['infra/hosts.int.test.ts', 'services/builder/x.int.test.ts', 'services/router/y.int.test.ts', 'cli/z.e2e.test.ts'],
      apart: ['services/controller/routes/a.int.test.ts', 'core/b.test.ts'],
    },
  )
})

t.test('the counts of the lanes add up, failures of both named', async (t) => {
  const a = new TapCounter()
  const b = new TapCounter()
  for (const l of ['# Subtest: one.test.ts', '    ok 1 - fine', '    1..1', 'ok 1 - one.test.ts']) a.line(l)
  for (const l of ['# Subtest: two.test.ts', '    not ok 1 - broken', '    ok 2 - fine', '    1..2', 'not ok 1 - two.test.ts']) b.line(l)
  t.match(TapCounter.merge([a, b]).counts, { passed: 1, failed: 1, skipped: 0, failures: ['two.test.ts'] })
})
