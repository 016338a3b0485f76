/** Something with a stream sequence. */
export interface Sequenced {
  seq: number
}

/** One message of {@link contiguous}: as delivered, or read again because its delivery was lost. */
export type InOrder<M extends Sequenced, S extends Sequenced> = { kind: 'live'; msg: M } | { kind: 'recovered'; msg: S; before: M }

export interface ContiguousOptions<S extends Sequenced> {
  /** The stream sequence the first delivery should have (where the subscription starts). */
  expected: number
  /** Reads the message at `seq` again; undefined when the stream holds none there (it was deleted). */
  fetch(seq: number): Promise<S | undefined>
  /** The stream's first sequence now, asked before a long gap is read one message at a time (a purged start). */
  firstSeq?(): Promise<number>
  /** Told of each gap found, before it is filled. */
  onGap?(from: number, to: number): void
}

/** A gap longer than this asks `firstSeq` first, so that a purged start is not read message by message. */
const LONG_GAP = 1_000

/**
 * The deliveries of an unfiltered durable consumer, in stream order with none missing and none
 * twice. On such a consumer consecutive deliveries have consecutive stream sequences; a delivery lost
 * on the wire (a reconnect drops what was in flight) shows up as a jump, and since the server counts
 * it delivered, the next ack (AckPolicy.All) would acknowledge it unseen. The missing messages are
 * read again with `fetch` and yielded, in order, before the one after the gap. A delivery at or below
 * what was already yielded (the server redelivering it after `ack_wait`) is dropped: it was handed out.
 */
export async function* contiguous<M extends Sequenced, S extends Sequenced>(
  source: AsyncIterable<M>,
  opts: ContiguousOptions<S>,
): AsyncGenerator<InOrder<M, S>> {
  let expected = opts.expected
  for await (const msg of source) {
    if (msg.seq < expected) continue
    if (msg.seq > expected) {
      opts.onGap?.(expected, msg.seq - 1)
      let from = expected
      if (msg.seq - from > LONG_GAP && opts.firstSeq) from = Math.max(from, await opts.firstSeq())
      for (let seq = from; seq < msg.seq; seq++) {
        const stored = await opts.fetch(seq)
        if (stored) yield { kind: 'recovered', msg: stored, before: msg }
      }
    }
    expected = msg.seq + 1
    yield { kind: 'live', msg }
  }
}
