// The whole program under Pulumi mocks: which resources each plan declares, their ordering, what is
// kept untouched, what is secret, and what the stack outputs say.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SETTINGS_INPUTS } from "../../components/colourSet";
import { RawConfig } from "../../lib/deployConfig";
import { sshFiles } from "../../lib/sshTransport";
import { DeclaredResource, isWrappedSecret, hostCommandStdin, runProgram, valueOf } from "../support/pulumiProgram";
import { loadStackConfig, repoRoot, requiredSecretsOf, requiredSettingsOf } from "../support/stackFiles";
import { requiredSettingValue, strongSecret } from "./fixtureSecrets";

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const imageA = `localhost:5000/medusa-store:A@${digest("a")}`;
const imageB = `localhost:5000/medusa-store:B@${digest("b")}`;
const DEV = "organization/medusa-deploy/dev";
const STAGING = "organization/medusa-deploy/staging";
const PROD = "organization/medusa-deploy/prod";

function stackConfig(stack: string, overrides: RawConfig = {}): RawConfig {
    const raw = loadStackConfig(stack);
    for (const key of requiredSecretsOf(stack)) raw[key] = { value: strongSecret(key), secret: true };
    for (const key of requiredSettingsOf(stack)) raw[key] = { value: requiredSettingValue(key), secret: false };
    return { ...raw, ...overrides };
}

const release = (name: string) => ({ release: { value: name, secret: false } });
const names = (run: { resources: DeclaredResource[] }, type: string) => run.resources.filter((r) => r.type === type).map((r) => r.name).sort();
const dependsOnNames = async (r: DeclaredResource) => {
    const deps = (await valueOf(r.opts.dependsOn as pulumi.Input<pulumi.Input<pulumi.Resource>[]>)) ?? [];
    const list = Array.isArray(deps) ? deps : [deps];
    return Promise.all(list.map(async (d) => (await valueOf(d as pulumi.Input<pulumi.Resource>)) as pulumi.Resource)).then((rs) =>
        rs.map((res) => (res as unknown as { __name?: string }).__name ?? ""),
    );
};

describe("the program under Pulumi mocks", function () {
    this.timeout(30000);

    it("dev, first deploy: registry, services, blue, edge and switch; blue is live", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        assert.deepEqual(names(run, "docker:index/container:Container"), ["blue-server", "blue-worker", "daily-backup", "edge", "postgres", "redis", "registry"]);
        assert.deepEqual(names(run, "docker-build:index:Image"), ["app", "base"]);
        assert.deepEqual(names(run, "command:local:Command"), ["blue-backup", "blue-backup-retention", "blue-health-gate", "blue-migration", "buildkit-builder", "edge-assets", "edge-config", "preflight", "prune-release-images", "stop-worker", "traffic-switch"]);
        assert.equal(run.outputs.live, "blue");
        assert.deepEqual(run.outputs.blue, { release: "A", image: `localhost:5000/medusa-store:A@${(run.outputs.blue as { image: string }).image.split("@")[1]}`, source: "built" });
        assert.equal(run.outputs.green, undefined);
        assert.equal(run.outputs.rollbackRelease, undefined);
        assert.equal(run.outputs.url, "http://127.0.0.1:8080");
    });

    it("the app image is built on the named builder with a max-mode registry cache and kept on delete", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const app = run.named("app");
        assert.deepEqual(app.inputs.tags, ["localhost:5000/medusa-store:A"]);
        assert.equal(app.inputs.push, true);
        assert.deepEqual(app.inputs.builder, { name: "medusa-deploy-dev" });
        assert.deepEqual(app.inputs.cacheTo, [{ registry: { ref: "localhost:5000/medusa-store:buildcache", mode: "max", imageManifest: true, ociMediaTypes: true } }]);
        assert.deepEqual(app.inputs.cacheFrom, [{ registry: { ref: "localhost:5000/medusa-store:buildcache" } }]);
        assert.equal(app.opts.retainOnDelete, true);
        assert.equal(run.named("base").opts.retainOnDelete, true);
        const buildArgs = (await valueOf(app.inputs.buildArgs as pulumi.Input<Record<string, string>>)) ?? {};
        assert.match(buildArgs.BASE_IMAGE, /^localhost:5000\/medusa-store:base@sha256:[0-9a-f]{64}$/, "the app builds FROM the base pinned by digest");
    });

    it("data volumes are protected and retained", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const volumes = run.ofType("docker:index/volume:Volume");
        assert.deepEqual(volumes.map((v) => v.name).sort(), ["postgres-data", "redis-data", "registry-data"]);
        for (const volume of volumes) {
            assert.equal(volume.opts.protect, true, `${volume.name} protected`);
            assert.equal(volume.opts.retainOnDelete, true, `${volume.name} retained`);
        }
    });

    it("the switch waits for the target's health gate and its migration; the worker waits for the switch and the worker handover", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const server = run.named("blue-server");
        assert.equal(server.inputs.wait, false, "the health gate command gates, not the provider's wait");
        assert.equal(server.inputs.waitTimeout, undefined);
        assert.equal(server.opts.customTimeouts, undefined);
        assert.deepEqual(await dependsOnNames(server), ["blue-migration"]);
        const switchCommand = run.named("traffic-switch");
        const deps = await dependsOnNames(switchCommand);
        for (const needed of ["edge", "blue-health-gate", "blue-migration", "edge-assets"]) assert.ok(deps.includes(needed), `switch depends on ${needed}: ${deps}`);
        const assets = run.named("edge-assets");
        for (const needed of ["edge", "blue-health-gate", "blue-migration"]) assert.ok((await dependsOnNames(assets)).includes(needed), `the asset map is written once blue is healthy and migrated (${needed})`);
        assert.deepEqual(await dependsOnNames(run.named("blue-worker")), ["switch", "worker-handover"]);
    });

    it("unchanged: the live release again builds nothing and keeps every colour as it runs", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "A", stackOutputs: { [DEV]: previous } });
        assert.deepEqual(names(run, "docker-build:index:Image"), [], "nothing is rebuilt or re-tagged");
        assert.equal(run.named("blue-image").inputs.name, imageA, "blue keeps its digest");
        assert.deepEqual(run.named("blue-server").opts.ignoreChanges, SETTINGS_INPUTS);
        assert.equal(run.outputs.live, "blue");
        assert.deepEqual(run.outputs.blue, { release: "A", image: imageA, source: "previous deploy" });
    });

    it("a new release replaces only the idle colour; the live colour is declared exactly as it runs", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: previous } });
        assert.deepEqual(names(run, "docker:index/container:Container").filter((n) => /blue|green/.test(n)), ["blue-server", "green-server", "green-worker"]);
        assert.deepEqual(run.named("green-server").opts.ignoreChanges, []);
        assert.deepEqual(run.named("blue-server").opts.ignoreChanges, SETTINGS_INPUTS);
        for (const input of ["envs", "networksAdvanced", "init"]) assert.ok(SETTINGS_INPUTS.includes(input), `${input} of the live colour is never changed`);
        assert.deepEqual(run.named("blue-migration").opts.ignoreChanges, ["create", "stdin", "triggers", "connection"]);
        assert.equal(run.named("blue-image").inputs.name, imageA);
        assert.match(String(run.named("traffic-switch").inputs.create), /TARGET_COLOUR='green'/);
        const assets = String(run.named("edge-assets").inputs.create);
        for (const env of ["TARGET_COLOUR='green'", "SERVER_BLUE='medusa-dev-blue-server'", "SERVER_GREEN='medusa-dev-green-server'", "ASSET_FOLDER='/server/public/admin/assets'", "ASSET_URL_PREFIX='/app/assets/'"]) assert.ok(assets.includes(env), `edge-assets gets ${env}`);
        const triggers = (await valueOf(run.named("edge-assets").inputs.triggers as pulumi.Input<unknown[]>)) as unknown[];
        // After the script's own hash: the target and both colours' servers.
        assert.equal(triggers.length, 4, "the map follows the script, the target and both colours' servers");
        assert.equal(triggers[1], "green");
        assert.equal(run.outputs.live, "green");
        assert.equal(run.outputs.rollbackRelease, "A");
        assert.deepEqual((run.outputs.green as { release: string }).release, "B");
    });

    it("switch back: the previous release is on the idle colour, nothing is built, traffic moves", async () => {
        const previous = { live: "green", blue: { release: "A", image: imageA }, green: { release: "B", image: imageB } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "B", stackOutputs: { [DEV]: previous } });
        assert.deepEqual(names(run, "docker-build:index:Image"), [], "no build for a rollback");
        assert.equal(run.named("blue-image").inputs.name, imageA);
        assert.equal(run.named("green-image").inputs.name, imageB);
        for (const kept of ["blue-server", "green-server"]) assert.notDeepEqual(run.named(kept).opts.ignoreChanges, [], `${kept} untouched`);
        assert.match(String(run.named("traffic-switch").inputs.create), /TARGET_COLOUR='blue'/);
        assert.deepEqual(names(run, "docker:index/container:Container").filter((n) => n.endsWith("worker")), ["blue-worker"]);
        assert.equal(run.outputs.live, "blue");
        assert.equal(run.outputs.rollbackRelease, "B");
    });

    it("the shop's maintenance page reaches the edge as a content-named side file the config returns", async () => {
        const work = fs.mkdtempSync(path.join(repoRoot, ".test-work/page-"));
        try {
            fs.writeFileSync(path.join(work, "down.html"), "<h1>Back soon</h1>");
            const config = { ...stackConfig("dev"), maintenancePageFile: { value: path.join(work, "down.html"), secret: false } };
            const run = await runProgram({ stack: "dev", config, appRelease: "A" });
            const install = run.named("edge-config");
            const create = String(await valueOf(install.inputs.create as pulumi.Input<string>));
            const stdin = hostCommandStdin(install).data;
            const page = /return status 503 content-type "text\/html; charset=utf-8" .* file (\S*maintenance-page-[0-9a-f]{12}\.html)/.exec(stdin)?.[1];
            assert.ok(page, `the config returns a maintenance page file:\n${stdin}`);
            assert.ok(create.includes("<h1>Back soon</h1>"), "the page's content is in the install's env");
            assert.ok(create.includes(path.posix.basename(page)), "named by the content's hash");
            const builtIn = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
            assert.ok(!hostCommandStdin(builtIn.named("edge-config")).data.includes(path.posix.basename(page)), "another page, another file");
        } finally {
            fs.rmSync(work, { recursive: true, force: true });
        }
    });

    it("manual promotion: up stages the new release on green, gated, with traffic and the worker left on blue; npm run switch then moves traffic", async () => {
        const manual = { ...stackConfig("dev"), promotion: { value: "manual", secret: false } };
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const staged = await runProgram({ stack: "dev", config: manual, appRelease: "B", stackOutputs: { [DEV]: previous } });
        assert.deepEqual(names(staged, "docker:index/container:Container").filter((n) => /blue|green/.test(n)), ["blue-server", "blue-worker", "green-server"]);
        assert.deepEqual(staged.named("green-server").opts.ignoreChanges, [], "green is deployed");
        assert.ok(names(staged, "command:local:Command").includes("green-health-gate") && names(staged, "command:local:Command").includes("green-migration"), "and migrated and gated");
        assert.match(String(staged.named("traffic-switch").inputs.create), /TARGET_COLOUR='blue'/);
        assert.equal(staged.outputs.live, "blue");
        assert.equal(staged.outputs.awaitingSwitch, "green");

        const recordedStage = { live: "blue", blue: { release: "A", image: imageA }, green: { release: "B", image: imageB }, awaitingSwitch: "green" };
        const moved = await runProgram({ stack: "dev", config: manual, appRelease: "B", stackOutputs: { [DEV]: recordedStage }, switchNow: "1" });
        assert.deepEqual(names(moved, "docker-build:index:Image"), [], "the switch builds nothing");
        assert.match(String(moved.named("traffic-switch").inputs.create), /TARGET_COLOUR='green'/);
        assert.equal(moved.outputs.live, "green");
        assert.equal(moved.outputs.awaitingSwitch, undefined);

        const refused = await runProgram({ stack: "dev", config: manual, appRelease: "C", stackOutputs: { [DEV]: recordedStage }, switchNow: "1" }).then(
            () => undefined,
            (error: Error) => error,
        );
        assert.match(String(refused?.message), /neither colour runs release C: run `pulumi up` to stage it first; nothing was changed/);
        const bad = await runProgram({ stack: "dev", config: manual, appRelease: "B", stackOutputs: { [DEV]: recordedStage }, switchNow: "yes" }).then(
            () => undefined,
            (error: Error) => error,
        );
        assert.match(String(bad?.message), /MEDUSA_DEPLOY_SWITCH must be 1 .* got "yes"/);
    });

    it("the edge does not depend on which colour is live: same inputs whether blue or green goes live", async () => {
        const first = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const second = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: { live: "blue", blue: { release: "A", image: imageA } } } });
        assert.equal(second.outputs.live, "green");
        for (const [name, type] of [["edge", "docker:index/container:Container"], ["edge-config", "command:local:Command"], ["edge-image", "docker:index/remoteImage:RemoteImage"]]) {
            assert.deepEqual(second.named(name, type).inputs, first.named(name, type).inputs, `${name} inputs changed with the live colour`);
        }
    });

    it("three successive releases and a rollback, each deploy planned on the outputs of the one before", async () => {
        const steps: Array<{ release?: string; tree: string; live: string; rollback?: string; built: boolean }> = [
            { tree: "A", live: "blue", built: true },
            { tree: "B", live: "green", rollback: "A", built: true },
            { tree: "C", live: "blue", rollback: "B", built: true },
            { release: "B", tree: "C", live: "green", rollback: "C", built: false },
        ];
        let previous: Record<string, unknown> | undefined;
        for (const step of steps) {
            const config = stackConfig("dev", step.release ? release(step.release) : {});
            const run = await runProgram({ stack: "dev", config, appRelease: step.tree, stackOutputs: previous ? { [DEV]: previous } : {} });
            assert.equal(run.outputs.live, step.live, `live after ${step.release ?? step.tree}`);
            assert.equal(run.outputs.rollbackRelease, step.rollback);
            // A deploy that builds nothing declares the last build as the state holds it (every input ignored).
            const app = run.named("app", "docker-build:index:Image");
            assert.equal(app.opts.ignoreChanges === undefined, step.built, `build of ${step.release ?? step.tree} ${step.built ? "runs" : "is kept as it was"}`);
            assert.deepEqual(run.outputs.build, { release: step.built ? step.tree : "C" });
            previous = run.outputs;
        }
        const final = previous as { blue: { release: string }; green: { release: string } };
        assert.deepEqual([final.blue.release, final.green.release], ["C", "B"]);
    });

    it("the same release again keeps the recorded build exactly as the state holds it: nothing builds, the engine sees no change", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA }, build: { release: "A" } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "A", machine: "another-laptop", stackOutputs: { [DEV]: previous } });
        for (const name of ["base", "app", "buildkit-builder"]) {
            assert.deepEqual(run.named(name).opts.ignoreChanges, ["*"], `${name} is not kept as the state holds it`);
        }
        assert.match(String(run.named("app").inputs.tags), /:A$/);
        assert.equal(run.named("blue-image").inputs.name, imageA, "blue keeps its digest, not the kept build's ref");
        assert.deepEqual(run.outputs.build, { release: "A" });
    });

    it("a stack without a recorded build declares no build on a deploy that builds nothing; a malformed record stops the program", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "A", stackOutputs: { [DEV]: previous } });
        assert.deepEqual(names(run, "docker-build:index:Image"), []);
        assert.equal(run.outputs.build, undefined);
        await assert.rejects(
            runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "A", stackOutputs: { [DEV]: { ...previous, build: "A" } } }),
            /stack "dev" output "build" must be \{release: "<release>"\}, got "A"/,
        );
    });

    it("an npmrc for private packages reaches the build only as a secret", async () => {
        const config = stackConfig("staging", { ...release("A"), npmrc: { value: "//npm.example.com/:_authToken=npm-t0ken", secret: true } });
        const run = await runProgram({ stack: "staging", config, appRelease: "A" });
        const secrets = run.named("app").inputs.secrets as Record<string, unknown>;
        assert.ok(isWrappedSecret(secrets.npmrc) || isWrappedSecret(secrets), "npmrc is passed as a Pulumi secret");
        assert.ok(!JSON.stringify(run.named("app").inputs, (_k, v: unknown) => (isWrappedSecret(v) ? "[secret]" : v)).includes("npm-t0ken"));
    });

    it("refuses to build a release the app folder does not hold", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        await assert.rejects(
            runProgram({ stack: "dev", config: stackConfig("dev", release("C")), appRelease: "B", stackOutputs: { [DEV]: previous } }),
            /release "C" is on neither colour, so it must be built, but examples\/medusa-store holds release "B"/,
        );
    });

    it("a malformed deploy record stops the program before any resource", async () => {
        const before = Date.now();
        await assert.rejects(
            runProgram({ stack: "dev", config: stackConfig("dev"), stackOutputs: { [DEV]: { live: "purple" } } }),
            /stack "dev" output "live" must be "blue" or "green"/,
        );
        assert.ok(Date.now() - before < 20000);
    });

    it("bad config stops the program before any resource, naming every bad setting", async () => {
        let declared = -1;
        const error = await runProgram({ stack: "dev", config: stackConfig("dev", { edgePort: { value: "0", secret: false }, platform: { value: "x", secret: false } }) }).then(
            (run) => { declared = run.resources.length; return undefined; },
            (e: Error) => e,
        );
        assert.ok(error instanceof Error, `program ran and declared ${declared} resources`);
        assert.match(error.message, /medusa-deploy:edgePort must be a whole number from 1 to 65535/);
        assert.match(error.message, /medusa-deploy:platform must be one of/);
    });

    it("no secret value appears in plain text in any resource input or output", async () => {
        const config = stackConfig("staging", release("A"));
        const run = await runProgram({ stack: "staging", config, appRelease: "A" });
        const secrets = Object.values(config).filter((s) => s.secret).map((s) => s.value);
        assert.ok(secrets.length >= 5);
        // Inputs as the engine receives them: a secret arrives wrapped with Pulumi's secret signature.
        let wrapped = 0;
        for (const resource of run.resources) {
            const redacted = JSON.stringify(resource.inputs, (_key, value: unknown) => {
                if (isWrappedSecret(value)) {
                    wrapped++;
                    return "[secret]";
                }
                return value;
            });
            for (const secret of secrets) assert.ok(!redacted.includes(secret), `${resource.type} ${resource.name} carries a secret in plain text`);
        }
        assert.ok(wrapped >= 5, `only ${wrapped} inputs were secrets`);
        const outputs = JSON.stringify(run.outputs);
        for (const secret of secrets) assert.ok(!outputs.includes(secret), "a secret reached the stack outputs");
        const migration = run.named("blue-migration");
        assert.ok(!String(migration.inputs.create).includes("s3cret"), "secrets never go on a command line");
        for (const output of ["stdout", "stderr"]) assert.ok(migration.opts.additionalSecretOutputs?.includes(output), `migration ${output} is secret`);
    });

    it("staging: remote commands over ssh, the daemon settings applied first, builds on the host", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        assert.deepEqual(names(run, "command:local:Command"), ["buildkit-builder"], "only the builder runs locally (buildx keeps metadata on the client)");
        assert.deepEqual(names(run, "command:remote:Command"), ["blue-backup", "blue-backup-retention", "blue-health-gate", "blue-migration", "daemon-json", "edge-assets", "edge-config", "preflight", "prune-release-images", "stop-worker", "traffic-switch"]);
        const daemon = run.named("daemon-json");
        assert.match(String(await valueOf(daemon.inputs.create as pulumi.Input<string>)), /^sudo -n env DAEMON_JSON_DESIRED=/);
        const provider = run.named("host-docker");
        assert.equal(provider.inputs.host, "ssh://deploy@staging.shop.example.com:22");
        assert.deepEqual((await dependsOnNames(run.named("network"))).sort(), ["daemon-json", "preflight"]);
        assert.deepEqual(await dependsOnNames(daemon), ["preflight"], "the host's checks run before daemon.json changes");
        assert.match(String(await valueOf(run.named("preflight").inputs.create as pulumi.Input<string>)), /^sudo -n env BACKUP_DIR='\/var\/lib\/medusa-deploy\/staging\/backups' CONTAINER_USERS='appUser=70001:70001 edgeUser=70002:70002' HOST_STATE_DIR='\/var\/lib\/medusa-deploy\/staging' sh -c /);
    });

    const CONTAINER = "docker:index/container:Container";
    it("the edge runs as edgeUser when host scripts are root, else as the user they run as, never root; it can write only its socket folder", async () => {
        const withSudo = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const create = String(await valueOf(withSudo.named("edge-config").inputs.create as pulumi.Input<string>));
        assert.match(create, /^sudo -n env /);
        assert.match(create.slice(0, create.indexOf(" sh -c ")), / EDGE_USER='70002:70002'/);
        const edge = withSudo.named("edge", CONTAINER);
        assert.equal(await valueOf(edge.inputs.user as pulumi.Input<string>), "70002:70002", "the user install-edge-config reports");
        assert.deepEqual(edge.inputs.volumes, [
            { hostPath: "/var/lib/medusa-deploy/staging/edge", containerPath: "/usr/local/etc/haproxy", readOnly: true },
            { hostPath: "/var/lib/medusa-deploy/staging/edge-run", containerPath: "/run/medusa-edge" },
        ], "edge-control (lock, backups, temporary files) is not mounted");
        assert.equal(edge.inputs.readOnly, true);
        assert.deepEqual(edge.inputs.capabilities, { drops: ["ALL"] });
        assert.deepEqual(edge.inputs.dnsOpts, ["timeout:1", "attempts:1"], "an absent colour's name must not hold the edge's start on a slow upstream DNS");

        const withoutSudo = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), sudo: { value: "false", secret: false }, manageDaemon: { value: "false", secret: false } }), appRelease: "A" });
        const plainCreate = String(await valueOf(withoutSudo.named("edge-config").inputs.create as pulumi.Input<string>));
        assert.match(plainCreate, /^env /);
        assert.doesNotMatch(plainCreate.slice(0, plainCreate.indexOf(" sh -c ")), /EDGE_USER=/, "without root the edge runs as the ssh user, whose uid only the host knows");
        assert.equal(await valueOf(withoutSudo.named("edge", CONTAINER).inputs.user as pulumi.Input<string>), "1000:1000", "what the host reported");
    });

    it("ssh hosts: every connection pins the host key; Docker's ssh client reads the stack's key file, never the state", async () => {
        const homeDir = fs.mkdtempSync(path.join(repoRoot, ".test-work/ssh-home-"));
        try {
            const config = stackConfig("staging", release("A"));
            const run = await runProgram({ stack: "staging", config, appRelease: "A", homeDir });
            const hostKey = config.sshHostKey.value;
            const gate = run.named("blue-health-gate");
            // The whole connection is a secret (it holds the private key).
            const connection = gate.inputs.connection as Record<string, unknown>;
            assert.ok(isWrappedSecret(connection), "the connection is not a secret");
            assert.equal((connection.value as { hostKey?: string }).hostKey, hostKey, "remote commands do not pin the host key");

            const files = sshFiles(homeDir, "staging");
            // Provider inputs arrive as JSON text.
            const sshOpts = (JSON.parse(String(await valueOf(run.named("host-docker").inputs.sshOpts as pulumi.Input<string>))) as string[]).join(" ");
            assert.match(sshOpts, new RegExp(`-i ${files.identity} .*UserKnownHostsFile=${files.knownHosts} .*StrictHostKeyChecking=yes`));
            assert.equal(fs.readFileSync(files.knownHosts, "utf8"), `staging.shop.example.com ${hostKey}\n`);
            assert.equal(fs.readFileSync(files.identity, "utf8"), config.sshPrivateKey.value.replace(/\n?$/, "\n"));
            assert.equal(fs.statSync(files.identity).mode & 0o777, 0o600, "the key file is readable by others");
            assert.equal(fs.statSync(files.dir).mode & 0o777, 0o700);
            for (const resource of run.resources) {
                const redacted = JSON.stringify(resource.inputs, (_key, value: unknown) => (isWrappedSecret(value) ? "[secret]" : value));
                assert.ok(!redacted.includes("PRIVATE KEY"), `${resource.name} carries the key in plain text`);
            }
        } finally {
            fs.rmSync(homeDir, { recursive: true, force: true });
        }
    });
});

describe("DockerHost under Pulumi mocks", function () {
    this.timeout(30000);

    it("re-runs the daemon.json apply only when what it applies changes", async () => {
        const triggersOf = async (overrides: RawConfig) => {
            const run = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), ...overrides }), appRelease: "A" });
            return run.named("daemon-json").inputs.triggers as string[];
        };
        const base = await triggersOf({});
        assert.deepEqual(await triggersOf({}), base, "same settings, same triggers: nothing runs");
        assert.notDeepEqual(await triggersOf({ buildkitKeepStorage: { value: "20GB", secret: false } }), base);
        assert.notDeepEqual(await triggersOf({ daemonExtra: { value: '{"registry-mirrors":["https://mirror.example"]}', secret: false } }), base);
        assert.deepEqual(await triggersOf({ edgePort: { value: "9090", secret: false } }), base, "an unrelated setting does not re-apply daemon.json");
    });

    it("the traffic switch watches the new colour for the configured window and error rate", async () => {
        const createOf = async (overrides: RawConfig) => {
            const run = await runProgram({ stack: "dev", config: stackConfig("dev", overrides), appRelease: "A" });
            return String(run.named("traffic-switch").inputs.create).split(" sh -c ")[0];
        };
        const defaults = await createOf({});
        assert.match(defaults, / WATCH_SECONDS='?30'?( |$)/);
        assert.match(defaults, / WATCH_MAX_ERROR_RATE='?0\.05'?( |$)/);
        const tuned = await createOf({ switchWatchSeconds: { value: "0", secret: false }, switchWatchMaxErrorRate: { value: "0.2", secret: false } });
        assert.match(tuned, / WATCH_SECONDS='?0'?( |$)/, "0 turns the watch off");
        assert.match(tuned, / WATCH_MAX_ERROR_RATE='?0\.2'?( |$)/);
    });

    it("the builder is ensured for every build and on every deploying machine, never on a deploy that builds nothing", async () => {
        const builderTriggers = async (options: { appRelease: string; machine?: string; previous?: Record<string, unknown> }) => {
            const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: options.appRelease, machine: options.machine, stackOutputs: options.previous ? { [DEV]: options.previous } : undefined });
            return run.resources.find((r) => r.name === "buildkit-builder")?.inputs.triggers as string[] | undefined;
        };
        const first = await builderTriggers({ appRelease: "A" });
        assert.ok(first);
        assert.deepEqual(await builderTriggers({ appRelease: "A" }), first, "same build, same machine: the script does not run again");
        assert.notDeepEqual(await builderTriggers({ appRelease: "A", machine: "ci-runner-7" }), first, "another machine has no builder of its own yet");
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        assert.notDeepEqual(await builderTriggers({ appRelease: "B", previous }), first, "a new release builds: the builder is checked first");
        assert.equal(await builderTriggers({ appRelease: "A", previous }), undefined, "nothing to build, no builder");
    });

    it("the builder runs on the configured BuildKit image, and a change of image recreates it", async () => {
        const builderOf = async (overrides: RawConfig) => {
            const config = stackConfig("dev", overrides);
            if (!("buildkitImage" in overrides)) delete config.buildkitImage;
            const run = await runProgram({ stack: "dev", config, appRelease: "A" });
            return run.named("buildkit-builder").inputs;
        };
        const stock = await builderOf({});
        const assignments = (create: unknown) => String(create).split(" sh -c ")[0];
        assert.doesNotMatch(assignments(stock.create), /BUILDKIT_IMAGE=/, "no image set: buildx's own default");
        const local = await builderOf({ buildkitImage: { value: "medusa-deploy/buildkit:v0.31.0", secret: false } });
        assert.match(assignments(local.create), / BUILDKIT_IMAGE='?medusa-deploy\/buildkit:v0\.31\.0'? /);
        assert.notDeepEqual(local.triggers, stock.triggers, "another image must recreate the builder");
    });

    it("the migration and the health gate mask appSecretEnv values too: they get the names, never the values", async () => {
        const secretEnv = { value: JSON.stringify({ SENTRY_DSN: "https://k3y9xQ2@sentry.example/7", PAYMENT_WEBHOOK: "whsec_9fT2xLq8Rz" }), secret: true };
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), appSecretEnv: secretEnv }), appRelease: "A" });
        for (const [command, variable] of [["blue-migration", "MIGRATION_SECRET_KEYS"], ["blue-health-gate", "GATE_SECRET_KEYS"]]) {
            const create = String(await valueOf(run.named(command).inputs.create as pulumi.Input<string>)).split(" sh -c ")[0];
            assert.match(create, new RegExp(`${variable}='PAYMENT_WEBHOOK SENTRY_DSN'`));
            assert.doesNotMatch(create, /k3y9xQ2|whsec_9fT2xLq8Rz/);
        }
    });

    it("no host script gets its previous output back in its environment, local or over ssh", async () => {
        for (const stack of ["dev", "staging"]) {
            const run = await runProgram({ stack, config: stackConfig(stack, stack === "staging" ? release("A") : {}), appRelease: "A" });
            const commands = run.resources.filter((r) => r.type === "command:remote:Command" || r.type === "command:local:Command");
            assert.ok(commands.length >= 3, `${stack}: expected the host scripts`);
            for (const c of commands) assert.equal(c.inputs.addPreviousOutputInEnv, false, `${stack}: ${c.name} would see PULUMI_COMMAND_STDOUT`);
        }
    });

    it("a local host runs its scripts without sudo and without ssh; a remote host through ssh with its key as a secret", async () => {
        const dev = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        assert.deepEqual(names(dev, "command:remote:Command"), []);
        assert.doesNotMatch(String(dev.named("edge-config").inputs.create), /sudo/);
        // HAProxy creates its sockets as the user it runs as: no owner on the socket line.
        assert.match(hostCommandStdin(dev.named("edge-config")).data, /stats socket \/run\/medusa-edge\/admin\.sock mode 600 level admin/);
        const staging = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const edgeConfig = staging.named("edge-config");
        assert.match(String(edgeConfig.inputs.create), /^sudo -n env EDGE_CONTAINER='medusa-staging-edge' EDGE_CONTROL_DIR='\/var\/lib\/medusa-deploy\/staging\/edge-control' EDGE_DIR='\/var\/lib\/medusa-deploy\/staging\/edge'/);
        assert.ok(isWrappedSecret(edgeConfig.inputs.connection), "the ssh connection (with the private key) is a secret");
        assert.match(hostCommandStdin(edgeConfig).data, /stats socket \S+ mode 600 level admin/);
        assert.deepEqual(names(dev, "command:local:Command").includes("daemon-json"), false, "dev leaves the local daemon.json alone");
    });
});

describe("promotion under Pulumi mocks", function () {
    this.timeout(30000);
    const stagingOutputs = { live: "blue", blue: { release: "A", image: `registry.example.com/shop/medusa:A@${digest("a")}` }, green: { release: "B", image: `registry.example.com/shop/medusa:B@${digest("b")}` } };

    it("promoteFrom: staging reads the staging stack of prod's own organization, whichever backend", async () => {
        const onCloud = await runProgram({ stack: "prod", organization: "acme", config: stackConfig("prod"), stackOutputs: { "acme/medusa-deploy/staging": stagingOutputs } });
        assert.equal(onCloud.named("promotion-source").inputs.name, "acme/medusa-deploy/staging");
        assert.equal(onCloud.outputs.live, "blue");
        assert.deepEqual(onCloud.outputs.blue, { release: "A", image: stagingOutputs.blue.image, source: "acme/medusa-deploy/staging (A)" });
        const onFiles = await runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: { [STAGING]: stagingOutputs } });
        assert.equal(onFiles.named("promotion-source").inputs.name, STAGING);
    });

    it("prod takes the release and digest staging serves live, and declares no build", async () => {
        const run = await runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: { [STAGING]: stagingOutputs } });
        assert.deepEqual(names(run, "docker-build:index:Image"), []);
        assert.deepEqual(names(run, "pulumi:providers:docker-build"), [], "no build provider either");
        assert.deepEqual(names(run, "command:local:Command"), []);
        const provider = run.named("host-docker");
        // The credentials list holds a secret, so the whole provider setting arrives as a secret.
        const registryAuth = provider.inputs.registryAuth as { value: unknown };
        assert.ok(isWrappedSecret(registryAuth), "registry credentials are a secret");
        const value = registryAuth.value;
        const auth = (typeof value === "string" ? JSON.parse(value) : value) as Array<Record<string, unknown>>;
        assert.equal(auth[0].address, "registry.example.com", "pulls from staging's registry with prod's credentials");
        assert.equal(auth[0].username, "deploy");
        assert.equal(run.named("blue-image").inputs.name, stagingOutputs.blue.image);
        assert.equal(run.outputs.live, "blue");
        assert.deepEqual(run.outputs.blue, { release: "A", image: stagingOutputs.blue.image, source: `${STAGING} (A)` });
    });

    it("prod pinned to B takes B's digest from staging's idle colour", async () => {
        const run = await runProgram({ stack: "prod", config: stackConfig("prod", release("B")), stackOutputs: { [STAGING]: stagingOutputs } });
        assert.equal(run.named("blue-image").inputs.name, stagingOutputs.green.image);
        assert.equal((run.outputs.blue as { release: string }).release, "B");
    });

    it("prod pinned to a release staging does not have: error listing what staging has", async () => {
        await assert.rejects(
            runProgram({ stack: "prod", config: stackConfig("prod", release("C")), stackOutputs: { [STAGING]: stagingOutputs } }),
            /release "C" is not on stack "organization\/medusa-deploy\/staging", which has A \(blue, live\) and B \(green\)/,
        );
    });

    it("staging with no outputs: clear error", async () => {
        await assert.rejects(runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: {} }), /stack "organization\/medusa-deploy\/staging" has no deployed release to promote/);
    });

    it("the planner runs on prod's own previous state: staging's new live release goes to prod's idle colour", async () => {
        const prodPrevious = { live: "blue", blue: { release: "A", image: stagingOutputs.blue.image, source: `${STAGING} (A)` } };
        const stagingNow = { ...stagingOutputs, live: "green" };
        const run = await runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: { [STAGING]: stagingNow, [PROD]: prodPrevious } });
        assert.equal(run.named("green-image").inputs.name, stagingOutputs.green.image);
        assert.equal(run.outputs.live, "green");
        assert.equal(run.outputs.rollbackRelease, "A");
        assert.deepEqual(run.outputs.blue, { release: "A", image: stagingOutputs.blue.image, source: `${STAGING} (A)` }, "the kept colour keeps its recorded source");
        assert.deepEqual(run.outputs.green, { release: "B", image: stagingOutputs.green.image, source: `${STAGING} (B)` });
    });
});
