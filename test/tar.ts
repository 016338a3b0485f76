import { Readable } from 'node:stream'

/**
 * A Docker build context as an in-memory tar (ustar): path -> content, names under 100 bytes. For
 * tests that build an image from a few files without a directory on disk.
 */
export function tarOf(files: Record<string, string>): Readable {
  const chunks: Buffer[] = []
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.from(content)
    const header = Buffer.alloc(512)
    header.write(name, 0)
    header.write('0000644\0', 100)
    header.write('0000000\0', 108)
    header.write('0000000\0', 116)
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124)
    header.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, '0')}\0`,
      136,
    )
    header.write('        ', 148)
    header.write('0', 156)
    header.write('ustar\0' + '00', 257)
    let sum = 0
    for (const b of header) sum += b
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
    chunks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  return Readable.from([...chunks, Buffer.alloc(1024)])
}
