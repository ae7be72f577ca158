// Real containers through the real engine: the Pulumi CLI and the docker plugin built by
// tools/toolchain.sh against a dockerd of the test's own, an image pulled from a real registry on
// loopback. What mocks cannot show: the provider's own checking of the inputs, the health-gated
// create, and that a second `up` with nothing changed changes nothing.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { freePort } from "../support/haproxyEdge";
import { LocalRegistry } from "../support/localRegistry";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { sandboxRuntimeSettings } from "../support/sandboxRuntime";
import { EngineStack, loadToolchain, PROJECT_DIR, runStack, stackOutputs, Toolchain } from "../support/toolchain";
import { HTTPD_APPLETS, importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";

const WORK = path.join(PROJECT_DIR, ".test-work/engine-containers", String(process.pid));
const FIXTURE_PROGRAM = path.join(PROJECT_DIR, "tests/fixtures/engine-containers");

function get(url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        http.get(url, (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => (body += chunk.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject);
    });
}

describe("containers on the real engine (pulumi CLI + docker plugin)", function () {
    this.timeout(10 * 60 * 1000);

    let toolchain: Toolchain;
    let dockerd: PrivateDockerd;
    let registry: LocalRegistry;
    let image = "";

    function stack(name: string, port: number, healthPath = "/health", waitTimeout = 60): EngineStack {
        return {
            projectDir: FIXTURE_PROGRAM,
            stack: name,
            stateDir: path.join(WORK, "state"),
            env: {
                ENGINE_DOCKER_HOST: dockerd.host,
                ENGINE_IMAGE: image,
                ENGINE_PORT: String(port),
                ENGINE_HEALTH_PATH: healthPath,
                ENGINE_WAIT_TIMEOUT: String(waitTimeout),
            },
        };
    }

    before(async function () {
        requireCommands(this, ["docker-registry", "dockerd", "docker"], "apt-get install -y docker-registry docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined, "apt-get install -y busybox-static");
        const loaded = loadToolchain();
        requireReal(this, "the engine toolchain", loaded.toolchain !== undefined, loaded.reason ?? "");
        toolchain = loaded.toolchain as Toolchain;
        requireReal(this, "the docker plugin 5.2.0", (toolchain.plugins.get("docker") ?? []).includes("5.2.0"), "npm run toolchain");

        fs.mkdirSync(WORK, { recursive: true });
        dockerd = new PrivateDockerd({ root: path.join(WORK, "dockerd"), daemonJson: { ...sandboxRuntimeSettings() } });
        await dockerd.start(60000);
        registry = new LocalRegistry({ root: path.join(WORK, "registry") });
        await registry.start();

        // A busybox image (sh, httpd, wget), pushed so the plugin pulls it like a release image.
        image = `${registry.address}/engine/busybox:1`;
        importBusyboxImage(dockerd, image, WORK, { applets: HTTPD_APPLETS, dirs: ["/tmp"], changes: ["ENV PATH=/bin"] });
        dockerd.docker(["push", image]);
        dockerd.docker(["rmi", image]);
    });

    after(async function () {
        await registry?.stop();
        await dockerd?.stop(60000);
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("pulumi up pulls the image and creates the network, volume and a healthy container; a second up changes nothing", async function () {
        const port = await freePort();
        const target = stack("healthy", port);
        const up = await runStack(toolchain, target, ["up"]);
        assert.equal(up.status, 0, `pulumi up failed:\n${up.output}`);
        console.log(`      up: ${(up.ms / 1000).toFixed(1)} s`);

        const name = String(stackOutputs(toolchain, target).containerName);
        const state = JSON.parse(dockerd.docker(["inspect", "--format", "{{json .State}}", name])) as { Running: boolean; Health?: { Status: string } };
        assert.equal(state.Running, true);
        assert.equal(state.Health?.Status, "healthy", "wait: true returned before the container was healthy");
        assert.deepEqual(await get(`http://127.0.0.1:${port}/health`), { status: 200, body: "ok\n" });
        assert.match(dockerd.docker(["volume", "ls", "--format", "{{.Name}}"]), /^engine-healthy-data$/m);
        assert.match(dockerd.docker(["network", "ls", "--format", "{{.Name}}"]), /^engine-healthy$/m);

        const again = await runStack(toolchain, target, ["up", "--expect-no-changes"]);
        assert.equal(again.status, 0, `a second up with nothing changed reported changes or failed:\n${again.output}`);
        const preview = await runStack(toolchain, target, ["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.output);
    });

    // The released plugin marks containers delete-before-replace (a name is unique per host); ours
    // must too, or every replacement fails with "name already in use" (it did, before info.go said so).
    it("a changed container input replaces the container under the same name: the old one is deleted first", async function () {
        const port = await freePort();
        const target = stack("replace", port);
        assert.equal((await runStack(toolchain, target, ["up"])).status, 0);
        const name = String(stackOutputs(toolchain, target).containerName);
        const before = dockerd.docker(["inspect", "--format", "{{.Id}}", name]).trim();
        target.env = { ...target.env, ENGINE_VARIANT: "2" };
        const up = await runStack(toolchain, target, ["up"]);
        assert.equal(up.status, 0, `the replacement failed:\n${up.output}`);
        assert.match(up.output, /"replace":1/);
        const after = dockerd.docker(["inspect", "--format", "{{.Id}}", name]).trim();
        assert.notEqual(after, before, "the container was not replaced");
        assert.deepEqual(await get(`http://127.0.0.1:${port}/health`), { status: 200, body: "ok\n" });
    });

    // The plugin's schema has no range check on ports: the daemon is the first to refuse, at create
    // time, which is why the settings check validates ports before any resource (lib/portRules.ts).
    it("an input the daemon rejects fails the up with the daemon's reason and leaves no container", async function () {
        const target = stack("invalid", await freePort());
        target.env = { ...target.env, ENGINE_PORT: "70000" };
        const up = await runStack(toolchain, target, ["up"]);
        assert.equal(up.status, 1, up.output);
        assert.match(up.output, /invalid port specification: "70000"/);
        assert.doesNotMatch(dockerd.docker(["ps", "-a", "--format", "{{.Names}}"]), /engine-invalid-server/);
    });
});
