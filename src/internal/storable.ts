/**
 * What PostgreSQL can store: text without NUL characters, well-formed Unicode
 * (a lone surrogate has no UTF-8 form, and two ids that differ only in one
 * would read one instance), JSON nested less deep than the encoders' stacks.
 */

/** Deepest JSON nesting written: deeper values are refused before encoding (a recursive encode would overflow). */
export const maxJsonDepth = 512

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff

/** Why a string cannot be stored as it is, or undefined. */
export const textProblem = (text: string): string | undefined => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0) return `contains a NUL character at index ${i}`
    if (isHighSurrogate(code)) {
      if (i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
        i++
        continue
      }
      return `is not well-formed Unicode (lone surrogate at index ${i})`
    }
    if (isLowSurrogate(code)) return `is not well-formed Unicode (lone surrogate at index ${i})`
  }
  return undefined
}

/**
 * Text we write for ourselves (error messages): NUL characters and lone
 * surrogates become U+FFFD, so the write cannot fail on them.
 */
export const storableText = (text: string): string => {
  if (textProblem(text) === undefined) return text
  let out = ""
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0) {
      out += "\uFFFD"
    } else if (isHighSurrogate(code) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      out += text[i] + text[i + 1]
      i++
    } else if (isHighSurrogate(code) || isLowSurrogate(code)) {
      out += "\uFFFD"
    } else {
      out += text[i]
    }
  }
  return out
}

/**
 * Why a JSON value (an encoded payload) cannot be stored, or undefined:
 * checks every string and key, and the nesting depth, without recursion.
 */
export const jsonProblem = (value: unknown): string | undefined => {
  const stack: Array<{ readonly value: unknown; readonly depth: number }> = [{ value, depth: 0 }]
  while (stack.length > 0) {
    const { depth, value: current } = stack.pop()!
    if (typeof current === "string") {
      const problem = textProblem(current)
      if (problem !== undefined) return `a string ${problem}`
    } else if (typeof current === "object" && current !== null) {
      if (depth >= maxJsonDepth) return `it is nested deeper than ${maxJsonDepth} levels`
      if (Array.isArray(current)) {
        for (const item of current) stack.push({ value: item, depth: depth + 1 })
      } else {
        for (const key of Object.keys(current)) {
          const problem = textProblem(key)
          if (problem !== undefined) return `a key ${problem}`
          stack.push({ value: (current as Record<string, unknown>)[key], depth: depth + 1 })
        }
      }
    }
  }
  return undefined
}

/** Longest error text stored as `last_error`; the rest is cut (a handler may fail with a megabyte of text). */
export const maxErrorLength = 16_384

/** An attempt's error as stored: storable, and cut to `maxErrorLength`. */
export const storableError = (text: string): string =>
  storableText(
    text.length <= maxErrorLength
      ? text
      : `${text.slice(0, maxErrorLength)}… (${text.length - maxErrorLength} more characters)`
  )
