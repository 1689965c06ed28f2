import * as Duration from "effect/Duration"

const units: ReadonlyArray<readonly [string, number]> = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["min", 60_000],
  ["s", 1_000],
  ["ms", 1]
]

/**
 * A duration for people: "30 s", "1 min 30 s", "250 ms", "2 h 5 min" (every
 * unit that is not zero, so nothing is rounded away but fractions of a
 * millisecond).
 *
 * @internal
 */
export const readable = (input: Duration.DurationInput): string => {
  const duration = Duration.decode(input)
  if (!Duration.isFinite(duration)) return "forever"
  let rest = Math.round(Duration.toMillis(duration))
  if (rest === 0) return "0 ms"
  const parts: Array<string> = []
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n} ${unit}`)
    rest -= n * size
  }
  return parts.join(" ")
}
