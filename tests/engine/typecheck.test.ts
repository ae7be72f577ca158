// The whole project type-checks under the strict tsconfig. The other engine tests run the program with
// ts-node's transpile-only mode (tests/support/toolchain.ts), so this is where a type error fails.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const repo = path.resolve(__dirname, "../..");

describe("the project's types", function () {
    this.timeout(180000);

    it("tsc --noEmit -p . reports no error", () => {
        const tsc = spawnSync(process.execPath, [path.join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", repo], { cwd: repo, encoding: "utf8" });
        assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    });
});
