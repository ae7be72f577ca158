// The image build on the real engine: the Pulumi CLI and the docker-build plugin built by
// tools/toolchain.sh, a named docker-container builder created by the real buildx from our
// buildkitd.toml on the local BuildKit image, and the project's own MedusaImage component building
// the fixture app and pushing it, with the registry cache in mode=max, to a real registry on loopback.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderBuildkitdToml } from "../../lib/buildkitdToml";
import { acquireBuildDockerd, releaseBuildDockerd } from "../support/buildDockerd";
import { ensureLocalNodeImage } from "../support/localNodeImage";
import { LocalRegistry } from "../support/localRegistry";
import { PrivateDockerd } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript } from "../support/runShellScript";
import { EngineStack, loadBuildkitImage, loadToolchain, PROJECT_DIR, runStack, stackOutputs, Toolchain } from "../support/toolchain";

const WORK = path.join(PROJECT_DIR, ".test-work/engine-build", String(process.pid));
const FIXTURE_PROGRAM = path.join(PROJECT_DIR, "tests/fixtures/engine-image");
const KEEP_STORAGE = "3GB";
const KEEP_BYTES = 3 * 1024 ** 3;

interface Manifest {
    layers: { digest: string }[];
}

describe("image build on the real engine (pulumi CLI + docker-build plugin + buildx + BuildKit)", function () {
    this.timeout(15 * 60 * 1000);

    let toolchain: Toolchain;
    let dockerd: PrivateDockerd;
    let registry: LocalRegistry;
    let nodeImage = "";
    const builders: string[] = [];
    const buildxConfig = path.join(WORK, "buildx");

    const clientEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...toolchain.env, DOCKER_HOST: dockerd.host, BUILDX_CONFIG: buildxConfig });

    async function ensureBuilder(name: string) {
        const run = await runShellScript(path.join(PROJECT_DIR, "host/ensure-buildkit-builder.sh"), {
            env: {
                ...clientEnv(),
                BUILDER_NAME: name,
                BUILDKITD_TOML: renderBuildkitdToml({ keepStorage: KEEP_STORAGE }),
                BUILDER_DRIVER_OPTS: "network=host",
                BUILDKIT_IMAGE: toolchain.buildkitImage,
                BUILDER_STATE_DIR: path.join(WORK, "builder-state"),
            },
            timeoutMs: 180000,
        });
        builders.push(name);
        assert.equal(run.status, 0, `ensure-buildkit-builder failed:\n${run.stdout}\n${run.stderr}`);
        return run;
    }

    function stack(name: string, builderName: string, release: string): EngineStack {
        return {
            projectDir: FIXTURE_PROGRAM,
            stack: name,
            stateDir: path.join(WORK, "state"),
            env: {
                BUILDX_CONFIG: buildxConfig,
                ENGINE_IMAGE_DOCKER_HOST: dockerd.host,
                ENGINE_IMAGE_APP_PATH: "../medusa-like-app",
                ENGINE_IMAGE_REGISTRY: `${registry.address}/engine/app`,
                ENGINE_IMAGE_CACHE_REF: `${registry.address}/engine/cache:app`,
                ENGINE_IMAGE_NODE_IMAGE: nodeImage,
                ENGINE_IMAGE_RELEASE: release,
                ENGINE_IMAGE_BUILDER_NAME: builderName,
            },
        };
    }

    async function manifest(name: string, reference: string): Promise<Manifest> {
        const response = await registry.request("GET", `/v2/${name}/manifests/${reference}`, {
            Accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        });
        assert.equal(response.status, 200, `no manifest ${name}:${reference} in the registry: ${response.body}`);
        return JSON.parse(response.body) as Manifest;
    }

    before(async function () {
        requireCommands(this, ["docker-registry", "dockerd", "docker", "runc"], "apt-get install -y docker-registry docker.io runc");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        const loaded = loadToolchain();
        requireReal(this, "the engine toolchain", loaded.toolchain !== undefined, loaded.reason ?? "");
        toolchain = loaded.toolchain as Toolchain;
        requireReal(this, "the docker-build plugin 0.0.22", (toolchain.plugins.get("docker-build") ?? []).includes("0.0.22"), "npm run toolchain");

        fs.mkdirSync(WORK, { recursive: true });
        dockerd = await acquireBuildDockerd();
        registry = new LocalRegistry({ root: path.join(WORK, "registry") });
        await registry.start();
        loadBuildkitImage(toolchain, dockerd.host);
        // The builder resolves FROM images from a registry only: give it the local Node image there.
        const localNode = ensureLocalNodeImage(dockerd);
        nodeImage = `${registry.address}/engine/node:20`;
        dockerd.docker(["tag", localNode, nodeImage]);
        dockerd.docker(["push", nodeImage]);
    });

    after(async function () {
        for (const name of builders) {
            try {
                execFileSync("docker", ["buildx", "rm", "--force", name], { env: clientEnv(), stdio: "ignore" });
            } catch {
                // already gone
            }
        }
        await registry?.stop();
        if (dockerd) await releaseBuildDockerd();
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("creates the named builder with real buildx on the local BuildKit image, and its GC limit reads back", async function () {
        const run = await ensureBuilder("engine-a");
        assert.match(run.stdout, /result: builder created/);

        const inspect = execFileSync("docker", ["buildx", "inspect", "engine-a"], { env: clientEnv(), encoding: "utf8" });
        assert.match(inspect, /Driver:\s+docker-container/);
        assert.match(inspect, /BuildKit version:\s+v0\.31\.0/, `the builder does not run our buildkitd:\n${inspect}`);
        // buildx prints each GC rule the running buildkitd reports; the last, catch-all rule is ours.
        const rules = inspect.split(/GC Policy rule#\d+:/).slice(1);
        assert.ok(rules.length >= 3, `expected our three GC rules, buildx shows:\n${inspect}`);
        const catchAll = rules.find((rule) => /All:\s+true/.test(rule));
        assert.ok(catchAll, `no catch-all GC rule:\n${inspect}`);
        assert.match(catchAll, /(Max Used Space|Keep Bytes|Reserved Space):\s+3GiB/, `catch-all rule is not bounded at ${KEEP_STORAGE}:\n${catchAll}`);

        const container = dockerd.docker(["ps", "--filter", "name=buildx_buildkit_engine-a", "--format", "{{.Names}} {{.Image}}"]).trim();
        assert.match(container, new RegExp(`buildx_buildkit_engine-a0 ${toolchain.buildkitImage.replace(/[.:/]/g, "\\$&")}`));
        const toml = dockerd.docker(["exec", "buildx_buildkit_engine-a0", "cat", "/etc/buildkit/buildkitd.toml"]);
        assert.match(toml, new RegExp(`gckeepstorage = ${KEEP_BYTES}`));
    });

    it("pulumi up builds and pushes the image with a mode=max registry cache; the recorded digest is the registry's; a second up changes nothing", async function () {
        const first = stack("first", "engine-a", "r1");
        const up = await runStack(toolchain, first, ["up"]);
        assert.equal(up.status, 0, `pulumi up failed:\n${up.output}`);
        console.log(`      first up (cold build and push): ${(up.ms / 1000).toFixed(1)} s`);

        const outputs = stackOutputs(toolchain, first);
        const digest = String(outputs.appDigest);
        assert.match(digest, /^sha256:[0-9a-f]{64}$/);
        assert.equal(await registry.manifestDigest("engine/app", "r1"), digest, "the engine recorded another digest than the registry holds for the tag");
        assert.equal(String(outputs.ref), `${registry.address}/engine/app:r1@${digest}`);

        // mode=max exports the layers of every stage, not only the final image's: the cache holds
        // layers (the build-stage dependency trees) that the image does not.
        const image = await manifest("engine/app", "r1");
        const cache = await manifest("engine/cache", "app");
        const imageLayers = new Set(image.layers.map((layer) => layer.digest));
        const stageOnly = cache.layers.filter((layer) => !imageLayers.has(layer.digest));
        assert.ok(stageOnly.length > 0, `the cache has only the image's own layers (mode=min?): ${cache.layers.length} layers`);

        const again = await runStack(toolchain, first, ["up", "--expect-no-changes"]);
        assert.equal(again.status, 0, `a second up with nothing changed reported changes or failed:\n${again.output}`);
    });

    it("a build on a fresh builder imports the registry cache: every step cached, the same layers", async function () {
        await ensureBuilder("engine-b");
        const second = stack("second", "engine-b", "r2");
        const up = await runStack(toolchain, second, ["up"]);
        assert.equal(up.status, 0, `pulumi up on a fresh builder failed:\n${up.output}`);

        const outputs = stackOutputs(toolchain, second);
        assert.equal(await registry.manifestDigest("engine/app", "r2"), String(outputs.appDigest));
        const first = await manifest("engine/app", "r1");
        const fresh = await manifest("engine/app", "r2");
        assert.deepEqual(
            fresh.layers.map((layer) => layer.digest),
            first.layers.map((layer) => layer.digest),
            "a step ran again on the fresh builder instead of coming from the registry cache",
        );
        const cachedSteps = (up.output.match(/CACHED/g) ?? []).length;
        console.log(`      fresh builder: ${(up.ms / 1000).toFixed(1)} s, ${fresh.layers.length} layers identical to the first build, ${cachedSteps} steps reported CACHED`);
    });
});
