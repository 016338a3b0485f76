/**
 * Counts tests in a TAP 14 stream from tap (`--reporter=tap`): a test is a subtest with no subtests
 * of its own (a `t.test` leaf, or a file without any). A subtest that has children and fails while
 * none of its children failed (a file that crashed after its tests passed, a timeout) counts as one
 * failure, so no failure goes uncounted.
 */
export interface TapCounts {
  passed: number
  failed: number
  skipped: number
  /** Names (path of subtest names) of the failed tests. */
  failures: string[]
}

interface Frame {
  name: string
  indent: number
  children: boolean
  failedChildren: boolean
}

const SUBTEST = /^(\s*)# Subtest: (.*)$/
const POINT = /^(\s*)(not ok|ok) \d+(?: - ([^#]*))?(?:\s*#\s+(SKIP|TODO)\b.*)?/i

export class TapCounter {
  readonly counts: TapCounts = { passed: 0, failed: 0, skipped: 0, failures: [] }
  readonly #stack: Frame[] = []

  /** The counts of several TAP streams (the lanes of one run) as one. */
  static merge(counters: TapCounter[]): TapCounter {
    const all = new TapCounter()
    for (const c of counters) {
      all.counts.passed += c.counts.passed
      all.counts.failed += c.counts.failed
      all.counts.skipped += c.counts.skipped
      all.counts.failures.push(...c.counts.failures)
    }
    return all
  }

  /** Feeds one line; returns the closed frame when the line ends a subtest (for progress output). */
  line(line: string): { name: string; depth: number; ok: boolean; leaf: boolean } | undefined {
    const sub = SUBTEST.exec(line)
    if (sub) {
      const parent = this.#stack[this.#stack.length - 1]
      if (parent) parent.children = true
      this.#stack.push({ name: sub[2]!.trim(), indent: sub[1]!.length, children: false, failedChildren: false })
      return undefined
    }
    const point = POINT.exec(line)
    if (!point) return undefined
    const indent = point[1]!.length
    const top = this.#stack[this.#stack.length - 1]
    // An assertion inside a subtest is indented deeper than the subtest's own closing point.
    if (!top || top.indent !== indent) return undefined
    this.#stack.pop()
    const ok = point[2] === 'ok'
    const directive = point[4]?.toUpperCase()
    const path = [...this.#stack.map((f) => f.name), top.name].join(' > ')
    const parent = this.#stack[this.#stack.length - 1]
    if (!top.children) {
      if (directive === 'SKIP') this.counts.skipped++
      else if (ok || directive === 'TODO') this.counts.passed++
      else this.#fail(path, parent)
    } else if (!ok && !top.failedChildren) {
      this.#fail(path, parent)
    }
    if (!ok && parent) parent.failedChildren = true
    return { name: top.name, depth: this.#stack.length, ok, leaf: !top.children }
  }

  #fail(path: string, parent: Frame | undefined): void {
    this.counts.failed++
    this.counts.failures.push(path)
    if (parent) parent.failedChildren = true
  }
}

/** Counts a whole TAP document. */
export function countTap(text: string): TapCounts {
  const c = new TapCounter()
  for (const l of text.split('\n')) c.line(l)
  return c.counts
}
