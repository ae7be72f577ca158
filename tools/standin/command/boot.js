// Starts the stand-in provider fast: runs the JavaScript of src/*.ts, transpiled once per version
// of the sources into .build/<hash of the sources>/ (TypeScript's transpileModule: no type check
// here, `npm run typecheck` does that). Starting through ts-node took 1.4-1.9 s on a busy 2-core
// machine, this ~0.3 s. Plain JavaScript so that it needs no compiler itself.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const src = path.join(__dirname, "src");
const sources = fs.readdirSync(src).filter((name) => name.endsWith(".ts")).sort();
const hash = crypto.createHash("sha256");
for (const name of sources) hash.update(`${name}\0${fs.readFileSync(path.join(src, name), "utf8")}\0`);
const builds = path.join(__dirname, ".build");
const out = path.join(builds, hash.digest("hex").slice(0, 16));

if (!fs.existsSync(path.join(out, "main.js"))) {
    const ts = require("typescript");
    const tmp = `${out}.tmp-${process.pid}`;
    fs.mkdirSync(tmp, { recursive: true });
    for (const name of sources) {
        const result = ts.transpileModule(fs.readFileSync(path.join(src, name), "utf8"), {
            fileName: path.join(src, name),
            compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true, inlineSources: true },
        });
        fs.writeFileSync(path.join(tmp, name.replace(/\.ts$/, ".js")), result.outputText);
    }
    try {
        fs.renameSync(tmp, out);
    } catch {
        // Another plugin process built the same sources first.
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    // Builds of older sources are of no use any more.
    for (const name of fs.readdirSync(builds)) {
        if (path.join(builds, name) !== out && !name.includes(".tmp-")) fs.rmSync(path.join(builds, name), { recursive: true, force: true });
    }
}
require(path.join(out, "main.js"));
