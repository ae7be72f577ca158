// tools/dev-stack.sh (npm run up/preview/rollback) must stop before any deploy with one message that
// lists everything missing (Docker unreachable, a taken port, missing plugins) and what to do.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PrivateDockerd } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { repoRoot } from "../support/stackFiles";

function devStack(action: string, env: NodeJS.ProcessEnv) {
    return spawnSync("sh", [path.join(repoRoot, "tools", "dev-stack.sh"), action], { env, encoding: "utf8", timeout: 60000 });
}

function devEdgePort(): number {
    return Number(/^ {2}medusa-deploy:edgePort: "?(\d+)"?$/m.exec(fs.readFileSync(path.join(repoRoot, "Pulumi.dev.yaml"), "utf8"))?.[1]);
}

describe("dev stack preflight (tools/dev-stack.sh)", function () {
    this.timeout(90000);
    const root = path.join(repoRoot, ".test-work", "dev-preflight");
    let dockerd: PrivateDockerd | undefined;

    before(async function () {
        requireCommands(this, ["dockerd", "docker"], "apt-get install -y docker.io");
        requireReal(this, "root (to start a private dockerd)", isRoot(), "run the tests as root");
        dockerd = new PrivateDockerd({ root, daemonJson: {} });
        await dockerd.start();
    });

    after(async () => {
        await dockerd?.stop();
    });

    it("says how to fix an unreachable Docker, and deploys nothing", () => {
        const result = devStack("up", { ...process.env, DOCKER_HOST: `unix://${root}/no-such.sock` });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /^medusa-deploy: cannot up the dev stack yet; nothing was changed:$/m);
        assert.match(result.stderr, /^ {2}- Docker is not reachable \(docker info failed\): start dockerd or Docker Engine, or set DOCKER_HOST$/m);
        assert.doesNotMatch(result.stdout, /Updating|Previewing|pulumi:pulumi:Stack/, "stops before the engine");
    });

    it("names the taken port and the setting that moves it", async () => {
        const port = devEdgePort();
        assert.ok(port > 0, "Pulumi.dev.yaml sets edgePort");
        const blocker = net.createServer();
        const listening = await new Promise<boolean>((resolve) => {
            blocker.once("error", () => resolve(false));
            blocker.listen(port, "127.0.0.1", () => resolve(true));
        });
        try {
            const result = devStack("preview", dockerd!.env());
            assert.equal(result.status, 1, result.stdout + result.stderr);
            assert.match(result.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is taken by another program \\(needed by medusa-dev-edge\\): .*config set medusa-deploy:edgePort <port> --stack dev`));
            if (!listening) console.warn(`      note: port ${port} was already taken by another program on this machine`);
        } finally {
            blocker.close();
        }
    });
});
