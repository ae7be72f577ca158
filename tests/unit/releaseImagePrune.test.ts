// The release image prune: what host/prune-release-images.sh is told (pure), and where it sits in the
// graph under Pulumi mocks: after the BlueGreen deployment as a whole, so after the traffic switch and
// the worker handover, with both colours' images kept, on local and ssh hosts. The script itself
// runs against a real dockerd in tests/host/pruneReleaseImages.test.ts.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { hostScript } from "../../components/hostScripts";
import { renderHostInvocation } from "../../lib/hostInvocation";
import { pruneReleaseImagesEnv, repositoryOf } from "../../lib/releaseImagePrune";
import { DeclaredResource, ProgramRun, hostCommandStdin, runProgram, valueOf } from "../support/pulumiProgram";
import { DEV, STAGING, digest, imageA, imageB, release, stackConfig } from "./testStacks";



/** The NAME=value words before `sh -c` of a rendered host invocation (values single-quoted when needed). */
function assignments(create: unknown): Record<string, string> {
    const head = String(create).split(" sh -c ")[0];
    return Object.fromEntries([...head.matchAll(/([A-Z_][A-Z0-9_]*)=('[^']*'|\S+)/g)].map(([, name, value]) => [name, value.replace(/^'|'$/g, "")]));
}

async function directDependencies(r: DeclaredResource): Promise<pulumi.Resource[]> {
    const deps = (await valueOf(r.opts.dependsOn as pulumi.Input<pulumi.Input<pulumi.Resource>[]>)) ?? [];
    const list = Array.isArray(deps) ? deps : [deps];
    return Promise.all(list.map(async (d) => (await valueOf(d as pulumi.Input<pulumi.Resource>)) as pulumi.Resource));
}

// The SDK's own expansion of a dependsOn entry (internal, so untyped): a component stands for every
// custom resource under it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { getAllTransitivelyReferencedResourceURNs } = require("@pulumi/pulumi/runtime/dependsOn") as {
    getAllTransitivelyReferencedResourceURNs(resources: Set<pulumi.Resource>, exclude: Set<pulumi.Resource>): Promise<Set<string>>;
};

/** Names of the custom resources the engine is told `r` waits for (dependsOn expanded as the SDK does). */
async function waitsFor(run: ProgramRun, r: DeclaredResource): Promise<string[]> {
    const urns = await getAllTransitivelyReferencedResourceURNs(new Set(await directDependencies(r)), new Set());
    const waited: string[] = [];
    for (const declared of run.resources) {
        if (declared.resource && urns.has((await valueOf(declared.resource.urn)) as string)) waited.push(declared.name);
    }
    return waited.sort();
}

describe("release image prune: what the script is told (pure)", () => {
    it("the repository of a reference drops its tag and digest, not a registry port", () => {
        assert.equal(repositoryOf(`registry.example.com:5000/shop/medusa:A@${digest("a")}`), "registry.example.com:5000/shop/medusa");
        assert.equal(repositoryOf(`registry.example.com/shop/medusa@${digest("a")}`), "registry.example.com/shop/medusa");
        assert.equal(repositoryOf("localhost:5000/medusa-store:B"), "localhost:5000/medusa-store");
        assert.equal(repositoryOf("shop/medusa"), "shop/medusa");
    });

    it("keeps both colours' images, live first, and prunes the live image's repository", () => {
        assert.deepEqual(pruneReleaseImagesEnv({ live: "green", images: { blue: imageA, green: imageB } }), {
            IMAGE_REPOSITORY: "localhost:5000/medusa-store",
            KEEP_IMAGES: `${imageB} ${imageA}`,
        });
        assert.deepEqual(pruneReleaseImagesEnv({ live: "blue", images: { blue: imageA } }), { IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: imageA });
    });

    it("refuses what the script would refuse: no live image, an unpinned or odd reference", () => {
        assert.throws(() => pruneReleaseImagesEnv({ live: "green", images: { blue: imageA } }), /the live colour green has no image to keep/);
        assert.throws(() => pruneReleaseImagesEnv({ live: "blue", images: { blue: "localhost:5000/medusa-store:A" } }), /is not a digest-pinned image reference/);
        assert.throws(() => pruneReleaseImagesEnv({ live: "blue", images: { blue: `-f ${imageA}` } }), /is not a digest-pinned image reference/);
        assert.throws(() => pruneReleaseImagesEnv({ live: "blue", images: { blue: "" } }), /is not a digest-pinned image reference/);
    });
});

describe("release image prune under Pulumi mocks", function () {
    this.timeout(60000);

    it("first deploy (local host): runs after the switch and the worker handover, keeping blue's image", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const prune = run.named("prune-release-images");
        assert.equal(prune.type, "command:local:Command");
        const env = assignments(prune.inputs.create);
        assert.equal(env.IMAGE_REPOSITORY, "localhost:5000/medusa-store");
        assert.equal(env.KEEP_IMAGES, (run.outputs.blue as { image: string }).image);
        assert.match(hostCommandStdin(prune).script, /^#!\/bin\/sh\n# prune-release-images\.sh/);
        assert.doesNotMatch(String(prune.inputs.create), /^sudo/);
        assert.deepEqual((await directDependencies(prune)).map((r) => (r as unknown as { __name: string }).__name), ["shop"], "waits for the whole deployment");
        const waited = await waitsFor(run, prune);
        for (const name of ["traffic-switch", "stop-worker", "blue-worker", "blue-server", "blue-migration"]) assert.ok(waited.includes(name), `waits for ${name}: ${waited.join(", ")}`);
        assert.deepEqual(prune.opts.ignoreChanges, []);
    });

    it("deploy to the idle colour: both colours' images kept, the new live one first", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const prune = run.named("prune-release-images");
        const green = (run.outputs.green as { image: string }).image;
        assert.deepEqual(assignments(prune.inputs.create), { IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: `${green} ${imageA}` });
        assert.deepEqual((prune.inputs.triggers as unknown[]).slice(1), ["localhost:5000/medusa-store", `${green} ${imageA}`, "green"]);
        const waited = await waitsFor(run, prune);
        for (const name of ["traffic-switch", "stop-worker", "green-worker"]) assert.ok(waited.includes(name), `waits for ${name}`);
    });

    it("switch back runs it again (traffic moved); an unchanged deploy declares it as the last one did and ignores a new script", async () => {
        const previous = { live: "green", blue: { release: "A", image: imageA }, green: { release: "B", image: imageB } };
        const back = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const prune = back.named("prune-release-images");
        assert.deepEqual(assignments(prune.inputs.create), { IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: `${imageA} ${imageB}` });
        assert.equal((prune.inputs.triggers as unknown[])[3], "blue");
        const again = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "B", stackOutputs: { [DEV]: back.outputs } });
        const unchanged = again.named("prune-release-images");
        assert.equal(unchanged.inputs.create, prune.inputs.create);
        assert.deepEqual(unchanged.inputs.triggers, prune.inputs.triggers);
        assert.deepEqual(unchanged.opts.ignoreChanges, ["create", "triggers", "connection"]);
    });

    it("an ssh host runs it over ssh, without sudo", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const prune = run.named("prune-release-images");
        assert.equal(prune.type, "command:remote:Command");
        assert.match(String(prune.inputs.create), /^env IMAGE_REPOSITORY='[^']+' KEEP_IMAGES='[^']+@sha256:[0-9a-f]{64}' sh -c /);
        assert.ok((await waitsFor(run, prune)).includes("traffic-switch"));
    });

    it("a promoting stack prunes the repository its images come from (staging's), keeping both colours", async () => {
        const stagingImage = (c: string, r: string) => `registry.example.com/shop/medusa:${r}@${digest(c)}`;
        const staging = { live: "green", blue: { release: "A", image: stagingImage("a", "A") }, green: { release: "B", image: stagingImage("b", "B") } };
        const prodPrevious = { live: "blue", blue: { release: "A", image: stagingImage("a", "A"), source: `${STAGING} (A)` } };
        const run = await runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: { [STAGING]: staging, "organization/medusa-deploy/prod": prodPrevious } });
        const prune = run.named("prune-release-images");
        assert.equal(prune.type, "command:remote:Command");
        assert.deepEqual(assignments(prune.inputs.create), { IMAGE_REPOSITORY: "registry.example.com/shop/medusa", KEEP_IMAGES: `${stagingImage("b", "B")} ${stagingImage("a", "A")}` });
    });
});

describe("host/prune-release-images.sh as sent to a host", () => {
    const run = (env: Record<string, string>) => {
        const command = renderHostInvocation({ script: hostScript("prune-release-images"), name: "prune-release-images", env, sudo: false });
        return spawnSync("/bin/sh", ["-c", command], { encoding: "utf8", env: { PATH: process.env.PATH, DOCKER_HOST: "unix:///nonexistent/docker.sock" }, timeout: 30000 });
    };

    it("refuses bad input before it asks docker anything, last line machine-readable", () => {
        for (const [env, message] of [
            [{ KEEP_IMAGES: imageA }, /IMAGE_REPOSITORY is required/],
            [{ IMAGE_REPOSITORY: "localhost:5000/medusa-store:A", KEEP_IMAGES: imageA }, /has a tag: give the repository only \(e.g. localhost:5000\/medusa-store\)/],
            [{ IMAGE_REPOSITORY: "bad repo", KEEP_IMAGES: imageA }, /is not an image repository/],
            [{ IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: "  " }, /KEEP_IMAGES is empty/],
            [{ IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: `${imageA} -f` }, /KEEP_IMAGES entry '-f' is not an image reference or id/],
        ] as const) {
            const result = run(env);
            assert.equal(result.status, 2, JSON.stringify(env));
            assert.match(result.stderr, message);
            assert.match(result.stderr, /nothing was removed/);
            assert.equal(result.stdout.trim().split("\n").pop(), "result: refused bad-input");
        }
        const unreachable = run({ IMAGE_REPOSITORY: "localhost:5000/medusa-store", KEEP_IMAGES: imageA });
        assert.equal(unreachable.status, 2);
        assert.equal(unreachable.stdout.trim(), "result: refused docker-unavailable");
    });
});
