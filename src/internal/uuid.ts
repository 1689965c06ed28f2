import { randomFillSync } from "node:crypto"

const random = new Uint8Array(10)
let lastMillis = -1
let sequence = 0

const hex: Array<string> = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

/**
 * A UUIDv7 (RFC 9562) from a millisecond timestamp. Within one millisecond, and
 * when the clock stands still or goes back (TestClock), the 12-bit `rand_a`
 * field is a counter, so ids made in one process sort in creation order.
 *
 * @internal
 */
export const uuidv7 = (millis: number): string => {
  if (millis > lastMillis) {
    lastMillis = millis
    randomFillSync(random)
    sequence = ((random[8] << 8) | random[9]) & 0x7ff // leave headroom for increments
  } else {
    sequence++
    if (sequence > 0xfff) {
      lastMillis++
      sequence = 0
    }
    randomFillSync(random, 2, 6)
  }
  const ms = lastMillis
  const b = new Uint8Array(16)
  b[0] = Math.floor(ms / 2 ** 40) & 0xff
  b[1] = Math.floor(ms / 2 ** 32) & 0xff
  b[2] = (ms >>> 24) & 0xff
  b[3] = (ms >>> 16) & 0xff
  b[4] = (ms >>> 8) & 0xff
  b[5] = ms & 0xff
  b[6] = 0x70 | ((sequence >>> 8) & 0x0f)
  b[7] = sequence & 0xff
  b[8] = 0x80 | (random[0] & 0x3f)
  b[9] = random[1]
  for (let i = 10; i < 16; i++) b[i] = random[i - 8]
  let s = ""
  for (let i = 0; i < 16; i++) {
    s += hex[b[i]]
    if (i === 3 || i === 5 || i === 7 || i === 9) s += "-"
  }
  return s
}
