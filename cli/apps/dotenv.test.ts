import t from 'tap'
import { parseDotenv, renderDotenv } from './dotenv.js'

t.test('parse: comments, export, quotes, escapes; bad lines named', (t) => {
  t.same(parseDotenv('# c\n\nA=1\nexport B = two words\nC="x\\ny"\nD=\'single $x\'\nE=\n'), { A: '1', B: 'two words', C: 'x\ny', D: 'single $x', E: '' })
  t.throws(() => parseDotenv('A=1\nnot a pair\n'), /line 2/)
  t.end()
})

t.test('render then parse gives the values back', (t) => {
  const values = { PLAIN: 'abc', URL: 'postgres://u:p@h:5432/db', SPACE: 'a b', NL: 'a\nb', QUOTE: 'say "hi"', EMPTY: '' }
  t.same(parseDotenv(renderDotenv(values)), values)
  t.equal(renderDotenv({ B: '2', A: '1' }), 'A=1\nB=2\n', 'sorted, plain values unquoted')
  t.end()
})
