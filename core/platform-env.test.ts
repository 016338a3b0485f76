import t from 'tap'
import { parseEnvFile } from './platform-env.js'

t.test('parses what make up writes, quotes included, and skips comments', async (t) => {
  const text = "# Written by `make up`\nWHARF_NATS_URL='nats://127.0.0.1:14222'\nWHARF_X='it'\\''s'\nnot a line\n"
  t.same(parseEnvFile(text), { WHARF_NATS_URL: 'nats://127.0.0.1:14222', WHARF_X: "it's" })
})
