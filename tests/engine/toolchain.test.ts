// The toolchain tools/toolchain.sh builds, as the engine sees it: exactly the pinned versions, and a
// plugin that is missing is a prompt, clear error naming the script, never a download or a hang.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { requireReal } from "../support/realComponent";
import { loadToolchain, PROJECT_DIR, runStack, Toolchain } from "../support/toolchain";

const WORK = path.join(PROJECT_DIR, ".test-work/engine-toolchain", String(process.pid));
const pinned = Object.fromEntries(
    [...fs.readFileSync(path.join(PROJECT_DIR, "tools/toolchain/versions.env"), "utf8").matchAll(/^([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
);

describe("the engine toolchain (tools/toolchain.sh)", function () {
    this.timeout(120000);
    let toolchain: Toolchain;

    before(function () {
        const loaded = loadToolchain();
        requireReal(this, "the engine toolchain", loaded.toolchain !== undefined, loaded.reason ?? "");
        toolchain = loaded.toolchain as Toolchain;
    });

    after(() => fs.rmSync(WORK, { recursive: true, force: true }));

    it("the CLI, the plugins and buildx report exactly the pinned versions", () => {
        const env = { ...process.env, ...toolchain.env };
        assert.equal(execFileSync("pulumi", ["version"], { env, encoding: "utf8" }).trim(), `v${pinned.PULUMI_VERSION}`);
        assert.deepEqual(toolchain.plugins.get("docker-build"), [pinned.DOCKER_BUILD_PLUGIN_VERSION]);
        for (const [name, versions] of toolchain.plugins) {
            const wanted = { command: pinned.COMMAND_PLUGIN_VERSION, docker: pinned.DOCKER_PLUGIN_VERSION, "docker-build": pinned.DOCKER_BUILD_PLUGIN_VERSION }[name];
            assert.deepEqual(versions, [wanted], `resource plugin ${name} is installed at ${versions.join(", ")}`);
        }
        assert.match(execFileSync("docker", ["buildx", "version"], { env, encoding: "utf8" }), new RegExp(`^github\\.com/docker/buildx v${pinned.BUILDX_VERSION.replace(/\./g, "\\.")} `));
        // check exits 0 with every pinned plugin installed, 3 when it names the ones that are not.
        const check = spawnSync("sh", [path.join(PROJECT_DIR, "tools/toolchain.sh"), "check"], { env, encoding: "utf8" });
        const absent = ["command", "docker", "docker-build"].filter((name) => !toolchain.plugins.has(name));
        assert.equal(check.status, absent.length === 0 ? 0 : 3, check.stderr);
        assert.match(check.stderr, new RegExp(`pulumi v${pinned.PULUMI_VERSION.replace(/\./g, "\\.")}; plugins:`));
        if (absent.length > 0) {
            const named = /missing resource plugins: ([^(]*)\(/.exec(check.stderr)?.[1].trim().split(" ").map((p) => p.replace(/-v[\d.]+$/, ""));
            assert.deepEqual(named?.sort(), absent, "check must name exactly the plugins that are not installed");
        }
    });

    it("a plugin missing from the Pulumi home fails the preview at once with a message naming the script", async () => {
        // A Pulumi home with the CLI and no plugins at all.
        const home = path.join(WORK, "empty-home");
        const bin = path.join(home, "versions", pinned.PULUMI_VERSION, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.copyFileSync(path.join(toolchain.env.PULUMI_HOME, "versions", pinned.PULUMI_VERSION, "bin", "pulumi"), path.join(bin, "pulumi"));
        fs.chmodSync(path.join(bin, "pulumi"), 0o755);
        const run = await runStack(
            { ...toolchain, env: { ...toolchain.env, PULUMI_HOME: home, PATH: `${bin}:${process.env.PATH ?? ""}` } },
            { projectDir: path.join(PROJECT_DIR, "tests/fixtures/engine-missing-plugin"), stack: "missing", stateDir: path.join(WORK, "state") },
            ["preview"],
            90000,
        );
        assert.equal(run.status, 1, run.output);
        assert.match(run.output, /docker-build/);
        assert.match(run.output, /run `npm run toolchain` \(sh tools\/toolchain\.sh\)/);
        assert.doesNotMatch(run.output, /[Dd]ownloading/, "the engine tried to download the plugin");
        assert.ok(run.ms < 60000, `took ${run.ms} ms`);
    });
});
