// The rehearsal of the path every real shop takes: staging builds on one host (a local dockerd of the
// test's own) and prod on an ssh host (tests/support/sshTestHost.ts: a namespace with its own
// dockerd and a real sshd, reached as an unprivileged `deploy` user) promotes by digest exactly
// what staging serves, without building. Prod is deployed from a clean machine: an empty HOME, no
// ssh agent, nothing but the stack's settings and secrets (the private key and the pinned host
// key). Keep-alive load runs through prod's edge the whole time.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { hostNames } from "../../lib/hostNames";
import { freePort } from "../support/haproxyEdge";
import { LoadClient } from "../support/loadClient";
import { ensureLocalHaproxyImage } from "../support/localHaproxyImage";
import { LocalRegistry } from "../support/localRegistry";
import { ensureLocalPostgresImage, ensureLocalRedisImage } from "../support/localServiceImages";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { assertServedOnlyBy, stopSequenceOnFailure, GOOD_RELEASE, loadSummary, RehearsalLog, RehearsalStack, startBuildingHost } from "../support/rehearsal";
import { SshTestHost } from "../support/sshTestHost";
import { PROJECT_DIR, requireToolchain, Toolchain } from "../support/toolchain";

const WORK = path.join(PROJECT_DIR, ".test-work/rehearsal-promotion", String(process.pid));
const STAGING = "rehearsal-staging";
const PROD = "rehearsal-prod";

const secret = (bytes: number) => crypto.randomBytes(bytes).toString("hex");

describe("deploy rehearsal on the real engine: staging builds locally, prod on an ssh host promotes by digest", function () {
    this.timeout(40 * 60 * 1000);
    stopSequenceOnFailure(this);

    let toolchain: Toolchain;
    let dockerd: PrivateDockerd;
    let registry: LocalRegistry;
    let nodeImage = "";
    let sshHost: SshTestHost;
    let staging: RehearsalStack;
    let prod: RehearsalStack;
    let load: LoadClient | undefined;
    let prodUrl = "";
    const log = new RehearsalLog();
    const prodSecrets = { jwtSecret: secret(32), cookieSecret: secret(32), postgresPassword: secret(16) };
    const prodNames = () => hostNames(PROD, "/home/deploy/.medusa-deploy/rehearsal-prod");

    const live = (stack: RehearsalStack) => String(stack.outputs().live);
    const colourOf = (stack: RehearsalStack, colour: string) => stack.outputs()[colour] as { release: string; image: string } | undefined;
    // Which containers exist (ids and names), not how long a stopped one has been stopped.
    const prodContainers = () => sshHost.docker(["ps", "-a", "--format", "{{.ID}} {{.Names}}"]).trim().split("\n").sort().join("\n");

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "docker-registry", "runc", "haproxy", "socat", "curl", "sshd", "ssh", "ssh-keygen", "nsenter"], "apt-get install -y docker.io docker-registry runc haproxy socat curl openssh-server util-linux");
        requireReal(this, "root (dockerd, namespaces and sshd need it)", isRoot(), "run the tests as root");
        toolchain = requireToolchain(this);

        fs.mkdirSync(WORK, { recursive: true });
        ({ dockerd, registry, nodeImage } = await startBuildingHost(WORK, toolchain));

        sshHost = new SshTestHost();
        await sshHost.start();
        // The registry both hosts use: on this machine's loopback, reached from the ssh host's own
        // loopback through a relay, so the image references (and digests) are the same on both.
        const registryPort = Number(registry.address.split(":")[1]);
        await sshHost.reachRootLoopback(registryPort, registryPort);
        const services = {
            postgresImage: ensureLocalPostgresImage(dockerd),
            redisImage: ensureLocalRedisImage(dockerd),
            edgeImage: ensureLocalHaproxyImage(dockerd),
        };
        // The same images on the ssh host (nothing can be pulled from Docker Hub there either).
        ensureLocalPostgresImage(sshHost.dockerd.dockerd);
        ensureLocalRedisImage(sshHost.dockerd.dockerd);
        ensureLocalHaproxyImage(sshHost.dockerd.dockerd);

        // Images imported into the test dockerds have no registry digest to pin.
        const common = { healthTimeoutSeconds: "120", switchWatchSeconds: "3", allowMutableImages: "edgeImage,postgresImage,redisImage", ...services };
        staging = new RehearsalStack(toolchain, {
            work: path.join(WORK, "staging"),
            stack: STAGING,
            settings: {
                ...common,
                host: "local",
                hostStateDir: path.join(WORK, "staging-host-state"),
                registry: `${registry.address}/rehearsal/shop`,
                buildkitImage: toolchain.buildkitImage,
                nodeImage,
                systemPackages: "",
                // The registry is on this machine's loopback.
                buildNetwork: "host",
                edgePort: String(await freePort()),
                appEnv: JSON.stringify({ SHOP_ENV: "staging" }),
            },
            secrets: { jwtSecret: secret(32), cookieSecret: secret(32), postgresPassword: secret(16) },
            env: { DOCKER_HOST: dockerd.host, BUILDX_CONFIG: path.join(WORK, "buildx") },
            // Prod reads staging's outputs from the same backend, as two stacks of one project do.
            stateDir: path.join(WORK, "state"),
        });
        staging.init();

        // Prod runs `pulumi` on a clean machine: an empty home, no agent, no ~/.ssh.
        const cleanHome = path.join(WORK, "clean-home");
        fs.mkdirSync(cleanHome, { recursive: true });
        const edgePort = 18000 + (process.pid % 1000);
        prod = new RehearsalStack(toolchain, {
            work: path.join(WORK, "prod"),
            stack: PROD,
            settings: {
                ...common,
                host: `ssh://${sshHost.user}@${sshHost.address}:${sshHost.port}`,
                sshHostKey: sshHost.hostPublicKey,
                sudo: "false",
                manageDaemon: "false",
                hostStateDir: prodNames().edgeDir.replace(/\/edge$/, ""),
                promoteFrom: STAGING,
                edgePort: String(edgePort),
                appEnv: JSON.stringify({ SHOP_ENV: "prod" }),
            },
            secrets: { ...prodSecrets, sshPrivateKey: sshHost.privateKey },
            env: { HOME: cleanHome, SSH_AUTH_SOCK: "" },
            stateDir: path.join(WORK, "state"),
        });
        prod.init();
        prodUrl = `http://127.0.0.1:${await sshHost.exposeOnRootLoopback(edgePort)}`;
    });

    after(async function () {
        await load?.stop();
        for (const line of log.lines) console.log(`      | ${line}`);
        if (process.env.KEEP_TEST_WORK) return;
        await sshHost?.stop();
        await registry?.stop();
        await dockerd?.stop(60000);
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("staging builds and serves release A; prod's first deploy promotes that digest over ssh without building", async function () {
        const a = staging.commitRelease("A");
        assert.equal(log.record("staging: release A", await staging.up()).status, 0);
        const preview = await prod.preview();
        assert.equal(preview.status, 0, `prod preview failed:\n${preview.output}`);
        assert.match(preview.plan, new RegExp(`^first deploy: blue runs ${a}`));

        const run = log.record("prod: first deploy (promotes A)", await prod.up());
        assert.equal(run.status, 0, `prod's first up failed:\n${run.output}`);
        assert.equal(run.timings?.phases["build+push"], undefined, "prod built an image");
        assert.equal(colourOf(prod, "blue")?.image, colourOf(staging, "blue")?.image, "prod does not run the digest staging serves");
        assert.equal(live(prod), "blue");
        assert.ok(!fs.existsSync(path.join(WORK, "clean-home/.ssh")), "the deploy wrote into ~/.ssh");
        // Without sudo the edge runs as the deploy user (who can then open its sockets), never root.
        const deployUser = `${execFileSync("id", ["-u", sshHost.user]).toString().trim()}:${execFileSync("id", ["-g", sshHost.user]).toString().trim()}`;
        assert.equal(sshHost.docker(["inspect", "--format", "{{.Config.User}}", `medusa-${PROD}-edge`]).trim(), deployUser);

        load = new LoadClient({ baseUrl: prodUrl, workers: 4, pauseMs: 10 });
        load.start();
        await assertServedOnlyBy(load, "blue", performance.now());
    });

    it("release B: staging serves it, prod promotes it to green under load; the same promotion again changes nothing", async function () {
        staging.commitRelease("B");
        assert.equal(log.record("staging: release B", await staging.up()).status, 0);
        const run = log.record("prod: promotes B", await prod.up());
        assert.equal(run.status, 0, `prod's up of B failed:\n${run.output}`);
        assert.equal(live(prod), "green");
        assert.equal(colourOf(prod, "green")?.image, colourOf(staging, "green")?.image);
        await assertServedOnlyBy(load, "green", performance.now());

        const again = log.record("prod: B again", await prod.up(["--expect-no-changes"]));
        assert.equal(again.status, 0, `the same promotion again changed something:\n${again.output}`);
    });

    it("prod rolls back to A in seconds: nothing pulled, nothing built", async function () {
        const a = colourOf(prod, "blue")?.release ?? "";
        prod.configure({ release: a });
        const run = log.record("prod: rollback to A", await prod.up());
        assert.equal(run.status, 0, `rollback failed:\n${run.output}`);
        assert.equal(run.timings?.phases.pull, undefined, "the rollback pulled an image");
        assert.equal(live(prod), "blue");
        await assertServedOnlyBy(load, "blue", performance.now());
        prod.configure({ release: "auto" });
    });

    it("a release that works on staging but cannot start on prod fails fast; prod keeps serving", async function () {
        staging.commitRelease("C (needs a prod setting)", { ...GOOD_RELEASE, start: "crash", crashWhen: "SHOP_ENV=prod" });
        assert.equal(log.record("staging: release C", await staging.up()).status, 0, "staging refused a release that starts there");
        const failed = log.record("prod: promotes C (cannot start)", await prod.up());
        assert.notEqual(failed.status, 0, "prod deployed a release that cannot start");
        assert.match(failed.output, /cannot load module/, "the error does not quote the server's log");
        assert.ok(failed.ms < 120000, `the failing deploy took ${failed.ms} ms`);
        assert.equal(live(prod), "blue");
        await assertServedOnlyBy(load, "blue", performance.now());
        for (const value of Object.values(prodSecrets)) assert.ok(!failed.output.includes(value), "a secret reached the failed deploy's output");
    });

    it("a host presenting another host key is refused before anything changes", async function () {
        const before = prodContainers();
        const pinned = sshHost.hostPublicKey;
        const other = execFileSync("sh", ["-c", `k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -f "$k" && cut -d' ' -f1,2 "$k.pub"; rm -f "$k" "$k.pub"`], { encoding: "utf8" }).trim();
        prod.configure({ sshHostKey: other });
        try {
            staging.commitRelease("D");
            assert.equal(log.record("staging: release D", await staging.up()).status, 0);
            const refused = log.record("prod: D against a host with another key", await prod.up());
            assert.notEqual(refused.status, 0, "prod deployed to a host whose key does not match the pin");
            assert.match(refused.output, /host key|Host key verification failed|REMOTE HOST IDENTIFICATION/i);
            assert.equal(prodContainers(), before, "containers changed on the host although its key did not match");
        } finally {
            prod.configure({ sshHostKey: pinned });
        }
        const run = log.record("prod: promotes D (pinned key again)", await prod.up());
        assert.equal(run.status, 0, `prod's up of D failed:\n${run.output}`);
        assert.equal(live(prod), "green");
        await assertServedOnlyBy(load, "green", performance.now());
    });

    it("npm run status, logs, exec and backup work over ssh as the deploy user", async function () {
        const status = await prod.status();
        assert.equal(status.status, 0, status.output);
        assert.match(status.output, new RegExp(`: live ${live(prod)}$`, "m"));
        assert.match(status.output, /edge +UP, check L7OK/);
        const logs = await prod.logs(["--role", "edge", "--tail", "3"]);
        assert.equal(logs.status, 0, logs.output);
        // A one-off in the live release over ssh: its environment, its exit code, its stdin closed.
        const oneoff = await prod.tool("tools/exec.ts", ["--", "node", "-e", "console.log('colour=' + process.env.MEDUSA_COLOUR + ' database=' + Boolean(process.env.DATABASE_URL)); process.exit(4)"]);
        assert.equal(oneoff.status, 4, `the command's exit code comes back over ssh:\n${oneoff.output}`);
        assert.ok(oneoff.output.includes(`colour=${live(prod)} database=true`), oneoff.output);
        // A manual backup over ssh, as the deploy user, into the folder the deploys use.
        const backup = await prod.database(["backup"]);
        assert.equal(backup.status, 0, backup.output);
        const name = /^backup: (\S*-manual-\d{8}T\d{6}Z\.dump) \d+ bytes/m.exec(backup.output)?.[1];
        assert.ok(name, `no manual backup named in:\n${backup.output}`);
        // The host is a network namespace: its files are this machine's.
        const file = fs.statSync(path.join(prodNames().edgeDir.replace(/\/edge$/, ""), "backups", name));
        assert.equal(file.mode & 0o777, 0o600);
        assert.notEqual(file.uid, 0, "the deploy user, not root, owns its backups (sudo is off)");
    });

    it("prod served every request of the sequence; no secret is in plain text in either state", async function () {
        assert.ok(load, "the load never started");
        await load.stop();
        const { total, byColour, failed } = loadSummary(load.records);
        load = undefined;
        log.note(`prod load: ${total} requests (${JSON.stringify(byColour)}), ${failed.length} failed`);
        assert.ok(total > 300, `only ${total} requests in the whole sequence`);
        assert.equal(failed.length, 0, `requests failed: ${JSON.stringify(failed.slice(0, 5))}`);
        const state = prod.stateText();
        for (const [key, value] of Object.entries({ ...prodSecrets, sshPrivateKey: sshHost.privateKey.split("\n")[1] })) {
            assert.ok(!state.includes(value), `${key} is in plain text in the state`);
        }
    });
});
