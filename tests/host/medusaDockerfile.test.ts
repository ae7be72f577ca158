// docker/medusa.Dockerfile built for real by dockerd 20.10's own BuildKit, on the fixture app in
// tests/fixtures/medusa-like-app (Medusa's layout: `npm run build` writes .medusa/server).
// Each claim is read from what Docker reports: the build's --progress=plain output, npm's http log,
// docker inspect, docker stop, and the layers of `docker save`.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { PrivateDockerd } from "../support/privateDockerd";
import { acquireBuildDockerd, releaseBuildDockerd, dockerBuild, stepsNamed, DockerBuildResult, buildLocalBaseImage } from "../support/buildDockerd";
import { requireCommands, requireReal, isRoot } from "../support/realComponent";

const repo = path.resolve(__dirname, "../..");
const fixture = path.join(repo, "tests/fixtures/medusa-like-app");
const work = path.join(repo, ".test-work/medusa-dockerfile");
const app = path.join(work, "app");
const dockerfile = path.join(repo, "docker/medusa.Dockerfile");
const baseImage = "medusa-deploy/base:test";
const image = "medusa-deploy/fixture-app:test";
const container = `medusa-dockerfile-test-${process.pid}`;
const secretMarker = `medusa-deploy-npmrc-marker-${process.pid}-${Date.now()}`;
const npmrc = path.join(work, "npmrc");
const depsStep = "id=medusa-deploy-deps,";
const prodDepsStep = "id=medusa-deploy-prod-deps,";
const buildStep = "npm run build";

/** `npm http fetch GET 200 <url> 226ms (cache miss)` lines: tarballs that really came over the network. */
function downloaded(step: { log: string[] }): string[] {
    return step.log
        .map((line) => /npm http fetch GET \d+ (\S+) .*\(cache miss\)/.exec(line)?.[1])
        .filter((url): url is string => url !== undefined);
}

describe("docker/medusa.Dockerfile (real dockerd BuildKit)", function () {
    this.timeout(10 * 60 * 1000);
    let dockerd: PrivateDockerd;
    let build: (tag?: string, extra?: { target?: string }) => Promise<DockerBuildResult>;

    before(async function () {
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the host tests as root");
        requireCommands(this, ["dockerd", "busybox", "tar"], "apt-get install -y docker.io busybox-static tar");
        dockerd = await acquireBuildDockerd();
        await buildLocalBaseImage(dockerd, baseImage);

        fs.rmSync(work, { recursive: true, force: true });
        fs.mkdirSync(work, { recursive: true });
        fs.cpSync(fixture, app, { recursive: true, filter: (src) => !/\/(node_modules|\.medusa)$/.test(src) });
        // Things the per-Dockerfile .dockerignore must keep out of the context.
        fs.writeFileSync(path.join(app, ".env"), "DATABASE_URL=postgres://must-not-be-in-the-image\n");
        fs.mkdirSync(path.join(app, "node_modules/left-over"), { recursive: true });
        fs.writeFileSync(path.join(app, "node_modules/left-over/index.js"), "module.exports = 1;\n");
        // The npmrc build secret: settings npm uses, plus a marker that must never reach a layer.
        fs.writeFileSync(npmrc, `# ${secretMarker}\nregistry=https://registry.npmjs.org/\n`);

        build = (tag = image, extra = {}) =>
            dockerBuild(dockerd, {
                context: app,
                dockerfile,
                tag,
                target: extra.target,
                buildArgs: { NODE_IMAGE: "medusa-deploy/node:20-local", BASE_IMAGE: baseImage, NPM_CONFIG_LOGLEVEL: "http" },
                secrets: { npmrc },
            });
    });

    after(async function () {
        if (!dockerd) return;
        try {
            dockerd.docker(["rm", "-f", container]);
        } catch {
            // not created
        }
        await releaseBuildDockerd();
    });

    it("builds the image with the fixture app and production dependencies only", async function () {
        const result = await build();
        console.log(`      first build (cache from earlier runs allowed): ${(result.durationMs / 1000).toFixed(1)} s`);
        const listing = dockerd.docker(["run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", "ls -A /server /server/node_modules"]);
        assert.match(listing, /index\.js/);
        assert.match(listing, /\bms\b/);
        assert.match(listing, /\bkleur\b/);
        assert.doesNotMatch(listing, /uglify-js/, "a devDependency reached the runtime image");
    });

    it("reruns no dependency step after a source-only change", async function () {
        const server = path.join(app, "src/server.js");
        fs.appendFileSync(server, `\n// source change ${Date.now()}\n`);
        const result = await build();
        console.log(`      source-only rebuild: ${(result.durationMs / 1000).toFixed(1)} s`);
        for (const step of [...stepsNamed(result, depsStep), ...stepsNamed(result, prodDepsStep)]) {
            assert.equal(step.cached, true, `dependency step ran again: ${step.name}\n${step.log.join("\n")}`);
        }
        const [buildRun] = stepsNamed(result, buildStep);
        assert.equal(buildRun.cached, false, "the build step did not run although the source changed");
    });

    it("downloads only the new package after a dependency change (npm cache mount reused)", async function () {
        // The previous tarballs are in the cache mount now (this build or an earlier run put them there).
        const lock = JSON.parse(fs.readFileSync(path.join(app, "package-lock.json"), "utf8")) as {
            packages: Record<string, { resolved?: string }>;
        };
        const previousTarballs = Object.entries(lock.packages)
            .filter(([key]) => key !== "")
            .map(([, entry]) => entry.resolved)
            .filter((url): url is string => url !== undefined);
        assert.ok(previousTarballs.length >= 3);

        execFileSync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--omit-lockfile-registry-resolved=false", "picocolors@1.1.1"], { cwd: app, stdio: "ignore" });
        // A field unique to this run, so the install steps cannot come from an earlier run's layer cache.
        const manifest = JSON.parse(fs.readFileSync(path.join(app, "package.json"), "utf8")) as Record<string, unknown>;
        manifest.description = `dependency change ${Date.now()}`;
        fs.writeFileSync(path.join(app, "package.json"), JSON.stringify(manifest, null, 2) + "\n");

        const result = await build();
        console.log(`      dependency-change rebuild: ${(result.durationMs / 1000).toFixed(1)} s`);
        const [deps] = stepsNamed(result, depsStep);
        assert.equal(deps.cached, false, "the install did not run although package.json changed");
        // Incremental: the previous tree is in its cache mount, so only the new package is installed.
        // ("up to date" when an earlier run's tree in the mount already has it.)
        assert.ok(deps.log.some((l) => /added 1 package\b|up to date/.test(l)), `the deps step did more than add the new package:\n${deps.log.join("\n")}`);
        const fetched = downloaded(deps);
        for (const url of previousTarballs) {
            assert.ok(!fetched.includes(url), `already-downloaded ${url} was fetched again:\n${deps.log.join("\n")}`);
        }
        console.log(`      downloaded in the deps step: ${fetched.length ? fetched.join(", ") : "nothing (all from the cache mount)"}`);
        const [prod] = stepsNamed(result, prodDepsStep);
        assert.ok(prod.log.some((l) => /added 1 package\b|up to date/.test(l)), `the prod-deps step did more than add the new package:\n${prod.log.join("\n")}`);
    });

    it("fails like npm ci when package.json and the lockfile disagree, instead of installing something else", async function () {
        const manifestPath = path.join(app, "package.json");
        const original = fs.readFileSync(manifestPath, "utf8");
        const manifest = JSON.parse(original) as { dependencies: Record<string, string> };
        manifest.dependencies["is-number"] = "7.0.0"; // not in the lockfile
        fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
        try {
            const failure = await build(`${image}-out-of-sync`).then(
                () => undefined,
                (error: Error) => error.message,
            );
            assert.ok(failure !== undefined, "the build succeeded with a package.json the lockfile does not match");
            assert.match(failure, /package\.json and package-lock\.json are not in sync: run npm install and commit package-lock\.json/);
        } finally {
            fs.writeFileSync(manifestPath, original);
        }
    });

    it("runs as a non-root user, reports healthy and stops gracefully on SIGTERM", async function () {
        assert.equal(dockerd.docker(["image", "inspect", "--format", "{{.Config.User}}", image]).trim(), "medusa");
        // The fixture has no `medusa` CLI, so the command is given as a deploy gives the migration job
        // its command; the entrypoint, health check, user and env are the image's own.
        dockerd.docker(["run", "-d", "--name", container, "--network", "none", image, "node", "index.js"]);
        assert.equal(dockerd.docker(["exec", container, "id", "-u"]).trim(), "1001");

        const deadline = Date.now() + 60000;
        let health = "";
        while (Date.now() < deadline) {
            health = dockerd.docker(["inspect", "--format", "{{.State.Health.Status}}", container]).trim();
            if (health === "healthy" || health === "unhealthy") break;
            await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(health, "healthy", dockerd.docker(["inspect", "--format", "{{json .State.Health}}", container]));

        const started = Date.now();
        dockerd.docker(["stop", "-t", "20", container]);
        const stopSeconds = (Date.now() - started) / 1000;
        console.log(`      docker stop took ${stopSeconds.toFixed(2)} s (timeout 20 s)`);
        assert.ok(stopSeconds < 5, `docker stop took ${stopSeconds} s: SIGTERM was not handled`);
        assert.equal(dockerd.docker(["inspect", "--format", "{{.State.ExitCode}}", container]).trim(), "0");
        assert.match(dockerd.docker(["logs", container]), /SIGTERM received, shutting down gracefully/);
    });

    it("writes every application file in exactly one layer and keeps the npmrc secret out", function () {
        const history = dockerd.docker(["history", "--no-trunc", "--format", "{{.CreatedBy}}", image]);
        assert.doesNotMatch(history, /chown -R/, "a RUN chown layer rewrites the app files");
        assert.doesNotMatch(history, new RegExp(secretMarker));

        const saved = path.join(work, "saved");
        fs.rmSync(saved, { recursive: true, force: true });
        fs.mkdirSync(saved, { recursive: true });
        execFileSync("sh", ["-c", `docker save '${image}' | tar -x -C '${saved}'`], { env: dockerd.env() });
        const manifest = JSON.parse(fs.readFileSync(path.join(saved, "manifest.json"), "utf8")) as Array<{ Layers: string[] }>;
        const layers = manifest[0].Layers.map((layer) => ({
            layer,
            files: execFileSync("tar", ["-tf", path.join(saved, layer)], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 }).split("\n"),
        }));
        for (const file of ["server/index.js", "server/package.json", "server/node_modules/ms/index.js", "server/node_modules/kleur/package.json"]) {
            const holders = layers.filter((l) => l.files.includes(file));
            assert.equal(holders.length, 1, `${file} is in ${holders.length} layers`);
        }
        assert.ok(!layers.some((l) => l.files.some((f) => /(^|\/)\.npmrc$/.test(f))), "an .npmrc is in a layer");
        const grep = execFileSync("sh", ["-c", `for f in ${layers.map((l) => `'${path.join(saved, l.layer)}'`).join(" ")}; do grep -c '${secretMarker}' "$f" || true; done`], { encoding: "utf8" });
        assert.ok(grep.split("\n").every((n) => n === "" || n === "0"), "the npmrc secret's content is in a layer");
        fs.rmSync(saved, { recursive: true, force: true });
    });

    it("installs the same production tree as `npm ci --omit=dev` in .medusa/server would", async function () {
        await build(`${image}-build`, { target: "build" });
        // The context had no .env and no node_modules (docker/medusa.Dockerfile.dockerignore);
        // .medusa/server's package.json and lockfile are copies of the root ones, and npm ci there
        // (the documented way) gives byte-identical node_modules to the image's prod-deps stage.
        const treeDigest = "find node_modules -type f ! -name .package-lock.json | LC_ALL=C sort | xargs sha256sum | sha256sum";
        const fromMedusaServer = dockerd.docker([
            "run", "--rm", "--network", "host", `${image}-build`, "sh", "-c",
            `cmp package.json .medusa/server/package.json && cmp package-lock.json .medusa/server/package-lock.json && test ! -e .env && test ! -e node_modules/left-over && cd .medusa/server && npm ci --omit=dev --no-audit --no-fund >/dev/null 2>&1 && ${treeDigest}`,
        ]).trim();
        const fromImage = dockerd.docker(["run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", treeDigest]).trim();
        assert.equal(fromImage, fromMedusaServer);
        dockerd.docker(["rmi", `${image}-build`]);
    });
});
