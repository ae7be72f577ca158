// host/prune-release-images.sh against a real dockerd of the test's own (PrivateDockerd) and Debian's
// registry on loopback, so release images carry what a deploy's pull leaves: a digest of the
// release repository (pulled as repo:tag@sha256:…), and tags. A "release" is a `docker import` of a
// static busybox rootfs plus /release and some random bytes, so each release has its own layer.
// The last test measures the disk over 20 simulated releases, with the prune after each and without.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalRegistry } from "../support/localRegistry";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";
import { importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";

const SCRIPT = path.resolve(__dirname, "../../host/prune-release-images.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/prune-release-images");
const OTHER = "other.example.com/shop/tools:1";

const lastLine = (run: ScriptRun) => run.stdout.trim().split("\n").pop() ?? "";
const RESULT = /^result: pruned (\d+) kept (\d+) freed (\d+) in-use (\d+) failed (\d+)$/;
function result(run: ScriptRun): { pruned: number; kept: number; freed: number; inUse: number; failed: number } {
    const m = RESULT.exec(lastLine(run));
    assert.ok(m, `last line is the result: ${run.stdout}\n${run.stderr}`);
    const [pruned, kept, freed, inUse, failed] = m.slice(1).map(Number);
    return { pruned, kept, freed, inUse, failed };
}
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

describe("host/prune-release-images.sh against a real dockerd", function () {
    this.timeout(900000);
    let dockerd: PrivateDockerd;
    let registry: LocalRegistry;
    let repository = "";

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 120000 }).trim();
    const imageId = (ref: string): string | undefined => {
        try {
            return execFileSync("docker", ["image", "inspect", "--format", "{{.Id}}", ref], { env: dockerd.env(), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
        } catch {
            return undefined;
        }
    };
    /** Every tag and digest of `repo` on the host. */
    const referencesOf = (repo: string): string[] =>
        docker(["image", "ls", "--no-trunc", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo])
            .split("\n")
            .filter(Boolean)
            .sort();
    /** Bytes of image layers on disk, as dockerd counts them (GET /system/df: LayersSize). */
    const layersSize = (): number =>
        JSON.parse(execFileSync("curl", ["-s", "--unix-socket", dockerd.socket, "http://docker/system/df"], { encoding: "utf8" })).LayersSize as number;

    /**
     * A release image `${repo}:${tag}` with `megabytes` of its own content. Pushed, it is then
     * referenced as a deploy pulls it: `${repo}:${tag}@sha256:…` (the image also has that digest).
     */
    function releaseImage(repo: string, tag: string, megabytes: number, push = true): string {
        importBusyboxImage(dockerd, `${repo}:${tag}`, ROOT, {
            applets: ["sh", "sleep", "true", "cat"],
            files: { "/release": `${repo}:${tag}\n`, "/payload": randomBytes(Math.round(megabytes * 1e6)) },
        });
        if (!push) return `${repo}:${tag}`;
        const pushed = docker(["push", `${repo}:${tag}`]);
        const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
        assert.ok(digest, `push reported a digest: ${pushed}`);
        return `${repo}:${tag}@${digest}`;
    }

    const prune = (env: Record<string, string>, extra: NodeJS.ProcessEnv = {}) =>
        runShellScript(SCRIPT, { env: { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, ...env, ...extra }, timeoutMs: 300000 });
    const removeContainers = () => {
        const all = docker(["ps", "-a", "-q"]);
        if (all) docker(["rm", "-f", ...all.split("\n")]);
    };

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "docker-registry", "curl"], "apt-get install -y docker.io docker-registry curl");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined, "apt-get install -y busybox-static");
        if (fs.existsSync(ROOT)) {
            unmountUnder(ROOT);
            fs.rmSync(ROOT, { recursive: true, force: true });
        }
        fs.mkdirSync(ROOT, { recursive: true });
        registry = new LocalRegistry({ root: path.join(ROOT, "registry") });
        await registry.start();
        repository = `${registry.address}/shop/medusa`;
        dockerd = new PrivateDockerd({ root: path.join(ROOT, "dockerd") });
        await dockerd.start(60000);
    });

    after(async function () {
        if (dockerd) await dockerd.shutdown();
        if (registry) await registry.stop();
    });

    describe("six releases, a container on r5, r5 and r6 kept", () => {
        const refs: Record<string, string> = {};
        let other = "";

        before(function () {
            for (let i = 1; i <= 6; i++) refs[`r${i}`] = releaseImage(repository, `r${i}`, 0.5);
            // r2 has a second tag; r3 only its digest, as the deploy's pull by repo:tag@digest leaves it.
            docker(["tag", `${repository}:r2`, `${repository}:r2-hotfix`]);
            docker(["image", "rm", `${repository}:r3`]);
            docker(["pull", refs.r3]);
            other = releaseImage("other.example.com/shop/tools", "1", 0.5, false);
            assert.equal(other, OTHER);
            docker(["run", "-d", "--name", "medusa-test-blue-server", "--network", "none", `${repository}:r5`, "sleep", "3600"]);
        });

        it("removes r1-r4 (every tag and digest), keeps r5, r6 and the other repository's image, reports the bytes", async function () {
            const ids = Object.fromEntries(Object.entries(refs).map(([k, ref]) => [k, imageId(ref)]));
            const sizes = Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, Number(docker(["image", "inspect", "--format", "{{.Size}}", id!]))]));
            const before = referencesOf(repository);
            assert.ok(before.some((line) => line.includes(" <none> ") && line.includes(refs.r3.split("@")[1])), `r3 has only its digest: ${before.join("\n")}`);

            const run = await prune({ IMAGE_REPOSITORY: repository, KEEP_IMAGES: `${refs.r5} ${refs.r6}` });
            assert.equal(run.status, 0, run.stdout + run.stderr);
            assert.deepEqual(result(run), { pruned: 4, kept: 2, freed: sizes.r1 + sizes.r2 + sizes.r3 + sizes.r4, inUse: 0, failed: 0 });
            for (const gone of ["r1", "r2", "r3", "r4"]) {
                assert.equal(imageId(ids[gone]!), undefined, `${gone} removed`);
                assert.match(run.stdout, new RegExp(`^pruned: .*\\(${ids[gone]}\\): `, "m"));
            }
            assert.deepEqual(
                referencesOf(repository).map((line) => line.split(" ")[1]),
                ["r5", "r6"],
                "only r5 and r6 are left of the repository, tags and digests alike",
            );
            assert.equal(imageId(OTHER) !== undefined, true, "another repository's image is never touched");
            assert.equal(docker(["inspect", "-f", "{{.State.Status}}", "medusa-test-blue-server"]), "running");
            assert.match(run.stdout, /kept: .*:r5.*: in the keep list/);
            console.log(`      ${run.stdout.trim().split("\n").slice(-2).join("\n      ")}`);

            const again = await prune({ IMAGE_REPOSITORY: repository, KEEP_IMAGES: `${refs.r5} ${refs.r6}` });
            assert.equal(again.status, 0, again.stderr);
            assert.deepEqual(result(again), { pruned: 0, kept: 2, freed: 0, inUse: 0, failed: 0 }, "a second run removes nothing");
        });

        it("keeps an image a container uses, stopped or running, even when it is not in the keep list", async function () {
            const r7 = releaseImage(repository, "r7", 0.5);
            docker(["run", "--name", "medusa-test-green-migrate", "--network", "none", `${repository}:r7`, "true"]);
            assert.match(docker(["inspect", "-f", "{{.State.Status}}", "medusa-test-green-migrate"]), /exited/);
            const run = await prune({ IMAGE_REPOSITORY: repository, KEEP_IMAGES: refs.r6 });
            assert.equal(run.status, 0, run.stderr);
            assert.deepEqual(result(run), { pruned: 0, kept: 3, freed: 0, inUse: 2, failed: 0 });
            assert.match(run.stdout, /kept: .*:r7.*: used by container medusa-test-green-migrate/);
            assert.match(run.stdout, /kept: .*:r5.*: used by container medusa-test-blue-server/);
            assert.ok(imageId(r7) && imageId(refs.r5));
            docker(["rm", "medusa-test-green-migrate"]);
        });

        it("an image a container started using after the listing: docker refuses, the script reports it and goes on", async function () {
            // A docker CLI whose `ps` lists no container, as if the container came after the listing.
            const bin = path.join(ROOT, "blind-ps-bin");
            fs.mkdirSync(bin, { recursive: true });
            const realDocker = execFileSync("sh", ["-c", "command -v docker"], { encoding: "utf8" }).trim();
            fs.writeFileSync(path.join(bin, "docker"), `#!/bin/sh\nif [ "$1" = ps ]; then exit 0; fi\nexec '${realDocker}' "$@"\n`, { mode: 0o755 });
            const run = await prune({ IMAGE_REPOSITORY: repository, KEEP_IMAGES: refs.r6 }, { PATH: `${bin}:${process.env.PATH}` });
            assert.equal(run.status, 0, run.stderr);
            const counts = result(run);
            assert.equal(counts.inUse, 1, run.stdout + run.stderr);
            assert.equal(counts.pruned, 1, "r7 (its container is gone) is removed");
            assert.match(run.stdout, /kept: .*:r5.*: docker refused to remove it \(in use\)/);
            assert.match(run.stderr, /docker refused to remove \S+:r5 .*container [0-9a-f]+ is using its referenced image/);
            assert.ok(imageId(refs.r5), "r5 is still there: never forced");
            assert.equal(docker(["inspect", "-f", "{{.State.Status}}", "medusa-test-blue-server"]), "running");
        });

        it("bad input and an image to keep that is not on the host refuse, removing nothing", async function () {
            const r8 = releaseImage(repository, "r8", 0.1);
            const before = referencesOf(repository);
            const cases: Array<[Record<string, string>, number, string, RegExp]> = [
                [{ KEEP_IMAGES: refs.r6 }, 2, "bad-input", /IMAGE_REPOSITORY is required/],
                [{ IMAGE_REPOSITORY: "", KEEP_IMAGES: refs.r6 }, 2, "bad-input", /IMAGE_REPOSITORY is required/],
                [{ IMAGE_REPOSITORY: repository }, 2, "bad-input", /KEEP_IMAGES is empty/],
                [{ IMAGE_REPOSITORY: repository, KEEP_IMAGES: " \n " }, 2, "bad-input", /KEEP_IMAGES is empty/],
                [{ IMAGE_REPOSITORY: `${repository}:r6`, KEEP_IMAGES: refs.r6 }, 2, "bad-input", /has a tag/],
                [{ IMAGE_REPOSITORY: repository, KEEP_IMAGES: `${repository}:r9@sha256:${"9".repeat(64)}` }, 3, "unknown-keep", /the image to keep '.*:r9@sha256:9+' is not on this host/],
            ];
            for (const [env, status, reason, message] of cases) {
                const run = await prune(env);
                assert.equal(run.status, status, `${JSON.stringify(env)}: ${run.stdout}${run.stderr}`);
                assert.equal(lastLine(run), `result: refused ${reason}`);
                assert.match(run.stderr, message);
                assert.match(run.stderr, /nothing was removed/);
            }
            assert.deepEqual(referencesOf(repository), before, "nothing was removed");
            assert.ok(imageId(r8));
        });
    });

    describe("disk", () => {
        it("disk over 20 releases: bounded with the prune after each deploy, linear without", async function () {
            removeContainers();
            const megabytes = 4;
            /**
             * Deploys 20 releases blue/green as the program does: the idle colour's server is replaced
             * by one of the new release (the colour's old container goes), then, with `withPrune`, the
             * prune keeps both colours' images.
             */
            const series = async (repo: string, withPrune: boolean) => {
                const start = layersSize();
                const rows: Array<{ release: number; images: number; bytes: number }> = [];
                const colourRef: Record<string, string> = {};
                for (let i = 1; i <= 20; i++) {
                    const colour = i % 2 === 1 ? "blue" : "green";
                    const ref = releaseImage(repo, `r${i}`, megabytes, withPrune);
                    const server = `medusa-sim-${withPrune ? "p" : "n"}-${colour}-server`;
                    if (docker(["ps", "-a", "-q", "--filter", `name=^/${server}$`]) !== "") docker(["rm", "-f", server]);
                    docker(["create", "--name", server, "--network", "none", ref, "sleep", "3600"]);
                    colourRef[colour] = ref;
                    if (withPrune) {
                        const run = await prune({ IMAGE_REPOSITORY: repo, KEEP_IMAGES: [ref, ...Object.values(colourRef).filter((r) => r !== ref)].join(" ") });
                        assert.equal(run.status, 0, run.stdout + run.stderr);
                        assert.equal(result(run).pruned, i > 2 ? 1 : 0, `release ${i}: ${run.stdout}`);
                    }
                    rows.push({ release: i, images: referencesOf(repo).length, bytes: layersSize() - start });
                }
                return rows;
            };
            const pruned = await series(`${repository}-pruned`, true);
            const unpruned = await series(`${repository}-unpruned`, false);
            console.log(`      image layers on disk (dockerd's /system/df LayersSize, growth from the series' start), ${megabytes} MB of own content per release:`);
            console.log("      release | with prune: images, disk | without prune: images, disk");
            for (let i = 0; i < 20; i++) {
                const p = pruned[i];
                const n = unpruned[i];
                console.log(`      ${String(p.release).padStart(7)} | ${String(p.images).padStart(6)}, ${mb(p.bytes).padStart(8)} | ${String(n.images).padStart(6)}, ${mb(n.bytes).padStart(8)}`);
            }
            console.log(`      docker system df after both series:\n      ${docker(["system", "df"]).split("\n").join("\n      ")}`);
            const perRelease = unpruned[19].bytes / 20;
            assert.ok(pruned.slice(2).every((row) => row.images === 2), "with the prune the repository holds the two colours' images from the third release on");
            assert.ok(Math.max(...pruned.map((r) => r.bytes)) <= 3 * perRelease + 1e6, "with the prune the disk stays within 2-3 releases");
            assert.equal(unpruned[19].images, 20, "without it every release stays");
            assert.ok(unpruned[19].bytes > 15 * megabytes * 1e6, "and the disk grows with every release");
        });

    });
});
