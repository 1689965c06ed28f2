import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

/**
 * Encodes values to the JSON stored in PostgreSQL and back. Tagged unions are
 * stored in ironflow's serde shape, `{"type": "Variant", ...}`: the top-level
 * `_tag` of the Schema's encoded form is renamed to `type` on the way out and
 * back on the way in.
 *
 * @internal
 */
export interface JsonCodec<A> {
  readonly encode: (value: A) => Either.Either<unknown, string>
  readonly decode: (json: unknown) => Either.Either<A, string>
  /** The variant name of a value (its `_tag`), if the Schema is a tagged union. */
  readonly tagOf: (value: A) => string | undefined
}

/** @internal */
export type TagShape = "renamed" | "plain" | { readonly collision: string }

const literalTagMembers = (ast: AST.AST): ReadonlyArray<AST.TypeLiteral> | undefined => {
  switch (ast._tag) {
    case "TypeLiteral":
      return [ast]
    case "Union": {
      const out: Array<AST.TypeLiteral> = []
      for (const member of ast.types) {
        const inner = literalTagMembers(member)
        if (inner === undefined) return undefined
        out.push(...inner)
      }
      return out
    }
    case "Refinement":
      return literalTagMembers(ast.from)
    case "Transformation":
      return literalTagMembers(ast.from)
    default:
      return undefined
  }
}

const hasProperty = (ast: AST.TypeLiteral, name: string) => ast.propertySignatures.find((p) => p.name === name)

/**
 * The variants of a tagged union Schema, from its encoded form: each variant's
 * `_tag` and its properties. `undefined` when the Schema is not a union of
 * objects that all carry a literal `_tag`.
 *
 * @internal
 */
export const taggedVariants = (
  schema: Schema.Schema.AnyNoContext
): ReadonlyArray<{ readonly tag: string; readonly properties: ReadonlyArray<AST.PropertySignature> }> | undefined => {
  const members = literalTagMembers(AST.encodedAST(schema.ast))
  if (members === undefined || members.length === 0) return undefined
  const out: Array<{ tag: string; properties: ReadonlyArray<AST.PropertySignature> }> = []
  for (const member of members) {
    const tag = hasProperty(member, "_tag")
    if (tag === undefined || !AST.isLiteral(tag.type)) return undefined
    out.push({ tag: String(tag.type.literal), properties: member.propertySignatures })
  }
  return out
}

/**
 * Decides whether a Schema's encoded form is a tagged union of objects (every
 * member has a literal `_tag`), in which case the tag is stored as `type`.
 *
 * @internal
 */
export const tagShape = (schema: Schema.Schema.AnyNoContext): TagShape => {
  const variants = taggedVariants(schema)
  if (variants === undefined) return "plain"
  const collision = variants.find((variant) => variant.properties.some((p) => p.name === "type"))
  return collision === undefined ? "renamed" : { collision: collision.tag }
}

const formatIssue = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)

/** @internal */
export const make = <A, I>(schema: Schema.Schema<A, I>, shape: TagShape = tagShape(schema)): JsonCodec<A> => {
  const encode = Schema.encodeUnknownEither(schema)
  const decode = Schema.decodeUnknownEither(schema)
  const renamed = shape === "renamed"
  return {
    encode: (value) =>
      Either.match(encode(value), {
        onLeft: (error) => Either.left(formatIssue(error)),
        onRight: (encoded) => {
          if (renamed && typeof encoded === "object" && encoded !== null && "_tag" in encoded) {
            const { _tag, ...rest } = encoded as Record<string, unknown>
            return Either.right({ type: _tag, ...rest })
          }
          return Either.right(encoded)
        }
      }),
    decode: (json) => {
      let input = json
      if (renamed && typeof json === "object" && json !== null && !("_tag" in json) && "type" in json) {
        const { type, ...rest } = json as Record<string, unknown>
        input = { _tag: type, ...rest }
      }
      return Either.mapLeft(decode(input), formatIssue)
    },
    tagOf: (value) =>
      typeof value === "object" && value !== null && "_tag" in value && typeof value._tag === "string"
        ? value._tag
        : undefined
  }
}
