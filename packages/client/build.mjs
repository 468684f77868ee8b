// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts files, from src/. Skips the work when dist/ is
// newer than src/ and the build settings, unless run with --force (as prepack does).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const PROJECTS = ['tsconfig.json', 'tsconfig.cjs.json']
const OUTPUTS = [path.join(here, 'dist', 'esm', 'index.js'), path.join(here, 'dist', 'cjs', 'package.json')]

const mtime = (file) => {
  try {
    return statSync(file).mtimeMs
  } catch {
    return -1
  }
}
const newest = (dir) => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((entry) =>
  entry.isDirectory() ? newest(path.join(dir, entry.name)) : mtime(path.join(dir, entry.name))))

const built = Math.min(...OUTPUTS.map(mtime))
// An installed copy without sources or compiler (e.g. an image's production install) keeps the dist/ it came with.
let tsc
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  statSync(path.join(here, 'src'))
} catch (err) {
  if (built >= 0) process.exit(0)
  throw err
}
const inputs = Math.max(newest(path.join(here, 'src')), ...[...PROJECTS, 'build.mjs', 'package.json'].map((f) => mtime(path.join(here, f))))
if (!process.argv.includes('--force') && built >= inputs) process.exit(0)

rmSync(path.join(here, 'dist'), { recursive: true, force: true })
for (const project of PROJECTS) {
  const result = spawnSync(process.execPath, [tsc, '-p', project], { cwd: here, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
// dist/cjs's files are CommonJS although the package is "type": "module".
mkdirSync(path.join(here, 'dist', 'cjs'), { recursive: true })
writeFileSync(path.join(here, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n')
