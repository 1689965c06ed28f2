/**
 * What the published package promises: a subpath export per public module, the shipped files,
 * peer dependencies at the versions we test, and a doc comment with `@since` and `@category` on
 * every public export (docgen checks `@since` and type-checks the examples; see docgen.json).
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import ts from "typescript"

const root = new URL("..", import.meta.url)
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"))
const modules = readdirSync(new URL("src/", root)).filter((file) => /^[A-Z]\w*\.ts$/.test(file)).map((file) =>
  file.slice(0, -3)
)
const installed = (name: string): string =>
  JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, root), "utf8")).version

describe("package.json", () => {
  it("exports the root and every public module from dist/, types first, and hides internal/", () => {
    const expected: Record<string, unknown> = {
      "./package.json": "./package.json",
      ".": { types: "./dist/index.d.ts", default: "./dist/index.js" }
    }
    for (const name of modules) expected[`./${name}`] = { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` }
    expected["./internal/*"] = null
    assert.deepStrictEqual(pkg.exports, expected)
    for (const [key, value] of Object.entries(pkg.exports)) {
      if (value !== null && typeof value === "object") assert.strictEqual(Object.keys(value)[0], "types", key)
    }
  })

  it("ships only the build, the sources, the migrations and the documents", () => {
    assert.deepStrictEqual(pkg.files, ["dist", "src", "migrations", "README.md", "LICENSE", "CHANGELOG.md"])
    assert.isUndefined(pkg.private)
  })

  it("takes effect and @effect/* as peers at the versions it is tested with, and keeps them as devDependencies", () => {
    for (const [name, range] of Object.entries<string>(pkg.peerDependencies)) {
      const version = installed(name)
      assert.strictEqual(range, `^${version.split(".").slice(0, 2).join(".")}.${range.split(".")[2]}`, name)
      const [major, minor, patch] = range.slice(1).split(".").map(Number)
      const [iMajor, iMinor, iPatch] = version.split(".").map(Number)
      assert.isTrue(iMajor === major && iMinor === minor && iPatch! >= patch!, `${name} ${version} is not in ${range}`)
      assert.isDefined(pkg.devDependencies[name], `${name} is not a devDependency`)
      assert.isUndefined(pkg.dependencies[name], `${name} is also a dependency`)
    }
    assert.deepStrictEqual(pkg.peerDependenciesMeta, { "@electric-sql/pglite": { optional: true } })
  })
})

const tagsOf = (node: ts.Node, source: ts.SourceFile): ReadonlyArray<string> =>
  (ts.getLeadingCommentRanges(source.text, node.getFullStart()) ?? [])
    .map((range) => source.text.slice(range.pos, range.end))
    .filter((comment) => comment.startsWith("/**"))
    .flatMap((comment) => Array.from(comment.matchAll(/@(since|category)\b/g), (match) => match[1]!))

const byName = (
  a: string,
  b: string
) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0)

describe("src/index.ts", () => {
  // Subpath imports only: the command line and the console pull in @effect/cli and an HTTP server.
  const outside = ["Cli", "Console", "ConsoleApi"]

  it("re-exports every public module but the CLI and the console, by name in alphabetical order, each with @since", () => {
    const file = "src/index.ts"
    const source = ts.createSourceFile(file, readFileSync(new URL(file, root), "utf8"), ts.ScriptTarget.ES2022, true)
    const exported = source.statements.map((statement) => {
      assert.isTrue(
        ts.isExportDeclaration(statement) && statement.exportClause !== undefined &&
          ts.isNamespaceExport(statement.exportClause),
        `only namespace re-exports: ${statement.getText(source).slice(0, 60)}`
      )
      const declaration = statement as ts.ExportDeclaration
      const name = (declaration.exportClause as ts.NamespaceExport).name.text
      assert.strictEqual((declaration.moduleSpecifier as ts.StringLiteral).text, `./${name}.js`, name)
      assert.include(tagsOf(statement, source), "since", name)
      return name
    })
    for (const name of outside) assert.include(modules, name, "a module left out of the index exists")
    assert.deepStrictEqual(exported, modules.filter((name) => !outside.includes(name)).sort(byName))
  })
})

describe("API reference", () => {
  it("every export of a public module has @since and @category", () => {
    const missing: Array<string> = []
    for (const name of modules) {
      const file = `src/${name}.ts`
      const source = ts.createSourceFile(file, readFileSync(new URL(file, root), "utf8"), ts.ScriptTarget.ES2022, true)
      for (const statement of source.statements) {
        if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
          for (const specifier of statement.exportClause.elements) {
            const tags = tagsOf(specifier, source)
            if (!tags.includes("since") || !tags.includes("category")) missing.push(`${file} ${specifier.name.text}`)
          }
          continue
        }
        const exported = ts.canHaveModifiers(statement) &&
          ts.getModifiers(statement)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
        if (!exported) continue
        const tags = tagsOf(statement, source)
        if (!tags.includes("since") || !tags.includes("category")) {
          missing.push(`${file} ${statement.getText(source).split("\n")[0]!.slice(0, 80)}`)
        }
      }
    }
    assert.deepStrictEqual(missing, [])
  })
})
