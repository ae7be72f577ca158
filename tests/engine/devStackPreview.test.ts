// `pulumi preview` of the embedded default (the dev stack, index.ts itself) on the real engine
// against a dockerd of the test's own: every resource the first deploy declares passes the real
// plugins' checks, and the plan is the first-deploy plan (blue live), with nothing built or run.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { sandboxRuntimeSettings } from "../support/sandboxRuntime";
import { PROJECT_DIR, requireToolchain, runStack, Toolchain } from "../support/toolchain";

const WORK = path.join(PROJECT_DIR, ".test-work/engine-dev-preview", String(process.pid));

describe("pulumi preview of the dev stack on the real engine", function () {
    this.timeout(5 * 60 * 1000);
    let toolchain: Toolchain;
    let dockerd: PrivateDockerd;

    before(async function () {
        requireCommands(this, ["dockerd", "docker"], "apt-get install -y docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        toolchain = requireToolchain(this);
        fs.mkdirSync(WORK, { recursive: true });
        dockerd = new PrivateDockerd({ root: path.join(WORK, "dockerd"), daemonJson: { ...sandboxRuntimeSettings() } });
        await dockerd.start(60000);
    });

    after(async function () {
        await dockerd?.stop(60000);
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("runs to the end and shows the first deploy: registry, services, blue, edge, switch; nothing else", async function () {
        const stateFile = () => fs.readdirSync(path.join(WORK, "state"), { recursive: true }).map(String);
        const run = await runStack(
            toolchain,
            { projectDir: PROJECT_DIR, stack: "dev", stateDir: path.join(WORK, "state"), env: { DOCKER_HOST: dockerd.host, PULUMI_CONFIG_PASSPHRASE: "medusa-deploy-dev" } },
            ["preview"],
        );
        assert.equal(run.status, 0, `preview failed:\n${run.output}`);
        const summary = JSON.parse(/^changes: (\{.*\})$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>;
        assert.deepEqual(Object.keys(summary), ["create"], `a first preview may only create: ${JSON.stringify(summary)}`);
        for (const name of ["registry", "postgres", "redis", "blue-server", "blue-migration", "blue-worker", "edge", "edge-config", "traffic-switch", "buildkit-builder", "app", "base"]) {
            assert.match(run.output, new RegExp(`::${name}\\]`), `the plan has no ${name}`);
        }
        assert.doesNotMatch(run.output, /::green-server\]/, "a first deploy puts only blue up");
        assert.equal(dockerd.docker(["ps", "-a", "-q"]).trim(), "", "a preview created a container");
        console.log(`      preview: ${(run.ms / 1000).toFixed(1)} s, ${summary.create} resources to create; state files: ${stateFile().length}`);
    });
});
