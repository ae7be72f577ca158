// The deploy rehearsal: the real program (index.ts) deployed release after release with the real
// `pulumi up` (the CLI and the docker, docker-build plugins built by tools/toolchain.sh; the command
// stand-in), on a dockerd of the test's own, with keep-alive GET and POST load (some slow) through
// the edge the whole time. The shop must never fail a request: not on a release, a rollback, a
// release that cannot start, a migration that fails, or a change of the live colour's settings.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Colour } from "../../lib/colour";
import { hostNames } from "../../lib/hostNames";
import { freePort } from "../support/haproxyEdge";
import { LoadClient } from "../support/loadClient";
import { ensureLocalHaproxyImage } from "../support/localHaproxyImage";
import { LocalRegistry } from "../support/localRegistry";
import { ensureLocalPostgresImage, ensureLocalRedisImage } from "../support/localServiceImages";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { assertServedOnlyBy, stopSequenceOnFailure, DeployRun, GOOD_RELEASE, loadSummary, RehearsalLog, RehearsalStack, startBuildingHost } from "../support/rehearsal";
import { PROJECT_DIR, requireToolchain, Toolchain } from "../support/toolchain";

const WORK = path.join(PROJECT_DIR, ".test-work/rehearsal", String(process.pid));
const STACK = "rehearsal-local";

const secret = (bytes: number) => crypto.randomBytes(bytes).toString("hex");

describe("deploy rehearsal on the real engine: a local docker host under load", function () {
    this.timeout(40 * 60 * 1000);
    // One sequence: a step that fails leaves nothing for the next ones to test.
    stopSequenceOnFailure(this);

    let toolchain: Toolchain;
    let dockerd: PrivateDockerd;
    let registry: LocalRegistry;
    let nodeImage = "";
    let stack: RehearsalStack;
    let load: LoadClient | undefined;
    const secrets = { jwtSecret: secret(32), cookieSecret: secret(32), postgresPassword: secret(16) };
    const names = () => hostNames(STACK, path.join(WORK, "host-state"));
    const log = new RehearsalLog();
    const releases: Record<string, string> = {};

    /** One step of the sequence: its `up`, with its timings in the log. */
    async function deploy(step: string, extra: string[] = []): Promise<DeployRun> {
        return log.record(step, await stack.up(extra));
    }

    function liveColour(): string {
        return String(stack.outputs().live);
    }

    const servedOnlyBy = (colour: string, since: number) => assertServedOnlyBy(load, colour, since);

    function releaseOfLive(): string {
        const outputs = stack.outputs();
        return (outputs[String(outputs.live)] as { release: string }).release;
    }

    function containerId(name: string): string {
        return dockerd.docker(["inspect", "--format", "{{.Id}}", name]).trim();
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "docker-registry", "runc", "haproxy", "socat", "curl"], "apt-get install -y docker.io docker-registry runc haproxy socat curl");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        toolchain = requireToolchain(this);

        fs.mkdirSync(WORK, { recursive: true });
        ({ dockerd, registry, nodeImage } = await startBuildingHost(WORK, toolchain));

        stack = new RehearsalStack(toolchain, {
            work: WORK,
            stack: STACK,
            settings: {
                host: "local",
                hostStateDir: path.join(WORK, "host-state"),
                registry: `${registry.address}/rehearsal/shop`,
                buildkitImage: toolchain.buildkitImage,
                nodeImage,
                systemPackages: "",
                postgresImage: ensureLocalPostgresImage(dockerd),
                redisImage: ensureLocalRedisImage(dockerd),
                edgeImage: ensureLocalHaproxyImage(dockerd),
                edgePort: String(await freePort()),
                healthTimeoutSeconds: "120",
                switchWatchSeconds: "3",
                // Images imported into the test dockerd have no registry digest to pin.
                allowMutableImages: "edgeImage,postgresImage,redisImage",
                // The registry is on this machine's loopback.
                buildNetwork: "host",
            },
            secrets,
            env: { DOCKER_HOST: dockerd.host, BUILDX_CONFIG: path.join(WORK, "buildx") },
        });
        stack.init();
    });

    after(async function () {
        await load?.stop();
        for (const line of log.lines) console.log(`      | ${line}`);
        await registry?.stop();
        // KEEP_TEST_WORK=1 keeps the daemon's state and the stack for a look after a failure.
        if (process.env.KEEP_TEST_WORK) return;
        await dockerd?.stop(60000);
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("first deploy: preview shows it, up puts blue live and the shop answers", async function () {
        releases.A = stack.commitRelease("A");
        const preview = await stack.preview();
        assert.equal(preview.status, 0, `preview failed:\n${preview.output}`);
        assert.match(preview.plan, new RegExp(`^first deploy: blue runs ${releases.A}`));

        const run = await deploy("first deploy (A)");
        assert.equal(run.status, 0, `first up failed:\n${run.output}`);
        assert.equal(liveColour(), "blue");
        const port = stack.outputs().url;
        load = new LoadClient({ baseUrl: String(port), workers: 4, pauseMs: 10 });
        load.start();
        await servedOnlyBy("blue", performance.now());
    });

    it("the edge runs as a non-root user that cannot write its config; Redis refuses a client without the password", function () {
        const edge = `medusa-${STACK}-edge`;
        assert.equal(dockerd.docker(["inspect", "--format", "{{.Config.User}}", edge]).trim(), "70002:70002");
        const mounts = JSON.parse(dockerd.docker(["inspect", "--format", "{{json .Mounts}}", edge])) as Array<{ Destination: string; RW: boolean }>;
        assert.deepEqual(mounts.map((m) => `${m.Destination} ${m.RW ? "rw" : "ro"}`).sort(), ["/run/medusa-edge rw", "/usr/local/etc/haproxy ro"]);
        const processUser = dockerd.docker(["exec", edge, "sh", "-c", "id -u; touch /usr/local/etc/haproxy/planted 2>&1 || echo refused"]);
        assert.match(processUser, /^70002\n[\s\S]*refused/);
        const redis = `medusa-${STACK}-redis`;
        assert.match(dockerd.docker(["exec", redis, "redis-cli", "ping"]), /NOAUTH/);
        assert.doesNotMatch(dockerd.docker(["inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Env}}", redis]), /requirepass|[0-9a-f]{64}/, "the password is in no command line or environment");
    });

    it("release B goes to green under load; the same release again changes nothing", async function () {
        releases.B = stack.commitRelease("B");
        const preview = await stack.preview();
        assert.match(preview.plan, new RegExp(`^deploy: green is replaced with ${releases.B}, then traffic moves blue -> green`));
        const run = await deploy("release B");
        assert.equal(run.status, 0, `up of B failed:\n${run.output}`);
        assert.equal(liveColour(), "green");
        await servedOnlyBy("green", performance.now());

        const again = await deploy("B again", ["--expect-no-changes"]);
        assert.equal(again.status, 0, `the same release again changed something:\n${again.output}`);
    });

    it("rollback to A: traffic moves back in seconds, nothing is built or pulled", async function () {
        stack.configure({ release: releases.A });
        const preview = await stack.preview();
        assert.match(preview.plan, /^switch back: traffic moves green -> blue, nothing rebuilt/);
        const run = await deploy("rollback to A");
        assert.equal(run.status, 0, `rollback failed:\n${run.output}`);
        assert.equal(run.timings?.phases["build+push"], undefined, "the rollback built an image");
        assert.equal(run.timings?.phases.pull, undefined, "the rollback pulled an image");
        assert.equal(liveColour(), "blue");
        await servedOnlyBy("blue", performance.now());
    });

    it("a release that cannot start fails fast with its log, and traffic stays on the live colour", async function () {
        // Back to the app folder's release for the next ones.
        stack.configure({ release: "auto" });
        // Release C is deployed from a second machine (a CI runner, a colleague's laptop): a buildx
        // store that has never seen the stack's builder.
        stack.commitRelease("C");
        const fromSecondMachine = log.record("release C from a second machine", await stack.up([], { BUILDX_CONFIG: path.join(WORK, "buildx-second-machine") }));
        assert.equal(fromSecondMachine.status, 0, `a deploy from a machine without the builder failed:\n${fromSecondMachine.output}`);
        assert.equal(liveColour(), "green");

        stack.commitRelease("D (cannot start)", { ...GOOD_RELEASE, start: "crash" });
        const failed = await deploy("release D (cannot start)");
        assert.notEqual(failed.status, 0, "a release that cannot start was deployed");
        assert.match(failed.output, /cannot load module/, "the error does not quote the server's log");
        assert.ok(failed.ms < 120000, `the failing deploy took ${failed.ms} ms, not fast`);
        assert.equal(liveColour(), "green");
        await servedOnlyBy("green", performance.now());

        stack.commitRelease("E");
        const next = await deploy("release E after the failure");
        assert.equal(next.status, 0, `the next good release failed:\n${next.output}`);
        assert.equal(liveColour(), "blue");
        await servedOnlyBy("blue", performance.now());
    });

    it("a release whose migration fails stops before its server; the secrets it printed are masked", async function () {
        stack.commitRelease("F (migration fails)", { ...GOOD_RELEASE, migration: "fail" });
        const failed = await deploy("release F (migration fails)");
        assert.notEqual(failed.status, 0, "a failed migration was deployed");
        assert.match(failed.output, /migration 20261201_orders_split failed/);
        assert.doesNotMatch(failed.output, new RegExp(secrets.postgresPassword), "the database password reached pulumi's output");
        assert.equal(liveColour(), "blue");
        await servedOnlyBy("blue", performance.now());

        stack.commitRelease("G");
        assert.equal((await deploy("release G")).status, 0);
        assert.equal(liveColour(), "green");
    });

    it("a change of the live colour's settings leaves the live colour's containers untouched", async function () {
        const server = containerId(names().server("green"));
        stack.configure({ appEnv: JSON.stringify({ LOG_LEVEL: "debug" }) });
        const preview = await stack.preview();
        assert.equal(preview.status, 0, preview.output);
        const run = await deploy("settings change");
        assert.equal(run.status, 0, `up after a settings change failed:\n${run.output}`);
        assert.equal(containerId(names().server("green")), server, "the live server was replaced by a settings change");
        await servedOnlyBy("green", performance.now());
    });

    it("each new release's migration was preceded by a backup named in lastBackup; a backup that cannot be written stops the next release before it migrates", async function () {
        const backupDir = path.join(WORK, "host-state", "backups");
        const last = stack.outputs().lastBackup as { name: string; release: string; folder: string; folderBytes?: number };
        assert.equal(last.release, releaseOfLive());
        assert.match(last.name, new RegExp(`^${STACK}-deploy-${last.release}-\\d{8}T\\d{6}Z\\.dump$`));
        assert.equal(last.folder, backupDir);
        const dumps = fs.readdirSync(backupDir).filter((f) => f.endsWith(".dump"));
        assert.ok(dumps.includes(last.name), `${last.name} is not in ${backupDir}: ${dumps.join(", ")}`);
        assert.ok(dumps.filter((f) => f.startsWith(`${STACK}-deploy-`)).length >= 4, `a backup before each migration: ${dumps.join(", ")}`);
        assert.equal((fs.statSync(backupDir).mode & 0o777).toString(8), "700");

        // The daily backup container took its catch-up backup at the first deploy, as the folder's owner.
        const daily = names().dailyBackup;
        assert.equal(dockerd.docker(["inspect", "--format", "{{.State.Status}} {{.Config.User}}", daily]).trim(), `running ${process.getuid?.()}:${process.getgid?.()}`);
        const dailies = dumps.filter((f) => new RegExp(`^${STACK}-daily-\\d{8}T\\d{6}Z\\.dump$`).test(f));
        assert.equal(dailies.length, 1, `one catch-up daily backup, then none until 03:30: ${dumps.join(", ")}`);
        assert.match(dockerd.docker(["logs", daily]), /next backup at \d{4}-\d\d-\d\dT03:30:00Z/);
        assert.ok((last.folderBytes ?? 0) > 0, "lastBackup reports the disk the backups use");

        // A full disk under the backup folder (a tiny tmpfs, filled): the folder passes every check,
        // the dump cannot be written.
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "medusa-full-backups", backupDir]);
        try {
            try {
                fs.writeFileSync(path.join(backupDir, "filler"), Buffer.alloc(128 * 1024));
            } catch (error) {
                if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
            }
            stack.commitRelease("H (backup impossible)");
            const failed = await deploy("release H (backup disk full)");
            assert.notEqual(failed.status, 0, "a release migrated without its backup");
            // The script's own reason reaches the error: pg_dump's, or (seen here: pg_dump exited 0
            // leaving an empty file on the full disk) the read-back's.
            assert.match(failed.output, /backup-database: (pg_dump failed|the dump does not read back)[\s\S]*no backup was made/, failed.output.slice(-3000));
            assert.match(failed.output, /the migration was not started/);
            assert.equal(liveColour(), "green");
            await servedOnlyBy("green", performance.now());
        } finally {
            execFileSync("umount", [backupDir]);
        }
        stack.commitRelease("I");
        assert.equal((await deploy("release I (backups back)")).status, 0);
        assert.equal(liveColour(), "blue");
    });

    it("npm run status reports what runs and fails when the live colour is not whole; npm run logs reads any role's log", async function () {
        const live = liveColour() as Colour;
        const ok = await stack.status();
        assert.equal(ok.status, 0, ok.output);
        assert.match(ok.output, new RegExp(`: live ${live}$`, "m"));
        assert.match(ok.output, new RegExp(`^${live} \\(live\\): release ${releaseOfLive().replace(/[()]/g, "\\$&")}`, "m"));
        assert.match(ok.output, new RegExp(`${names().server(live)}: running, healthy, up `));
        assert.match(ok.output, /edge +UP, check L7OK, \d+ requests, 0 errors/);
        const json = JSON.parse((await stack.status(["--json"])).output) as { live: string; problems: string[]; services: Array<{ name: string; state: string }> };
        assert.equal(json.live, live);
        assert.deepEqual(json.problems, []);
        assert.ok(json.services.some((s) => s.name === names().dailyBackup && s.state === "running"));

        // The live worker stopped by hand: the shop serves, but status says what is wrong and exits 1.
        dockerd.docker(["stop", names().worker(live)]);
        try {
            const broken = await stack.status();
            assert.equal(broken.status, 1, broken.output);
            assert.match(broken.output, new RegExp(`the live colour's worker ${names().worker(live)} is exited`));
        } finally {
            dockerd.docker(["start", names().worker(live)]);
        }

        const server = await stack.logs(["--tail", "5"]);
        assert.equal(server.status, 0, server.output);
        assert.ok(server.output.trim().split("\n").length <= 5 && server.output.trim() !== "", `the live server's last lines:\n${server.output}`);
        const daily = await stack.logs(["--role", "daily-backup"]);
        assert.match(daily.output, /daily-backup: .*next backup at/);
        const migration = await stack.logs(["--role", "migration"]);
        assert.equal(migration.status, 2);
        assert.match(migration.output, /its output is in the `pulumi up` output/);
        await servedOnlyBy(live, performance.now());
    });

    it("runbook tools on the deployed edge under load: a one-off in the live release, a cookie preview of the idle colour, a maintenance hold that loses no request", async function () {
        const live = liveColour() as Colour;
        const idle: Colour = live === "blue" ? "green" : "blue";
        const show = "console.log('release=' + process.env.MEDUSA_RELEASE + ' colour=' + process.env.MEDUSA_COLOUR + ' database=' + Boolean(process.env.DATABASE_URL)); process.exit(3)";
        const oneoff = await stack.tool("tools/exec.ts", ["--", "node", "-e", show]);
        assert.equal(oneoff.status, 3, `the command's exit code is the tool's:\n${oneoff.output}`);
        assert.ok(oneoff.output.includes(`release=${releaseOfLive()} colour=${live} database=true`), oneoff.output);
        assert.equal(dockerd.docker(["ps", "-aq", "--filter", "label=medusa-deploy.role=oneoff"]).trim(), "", "the one-off container is gone");
        for (const [key, value] of Object.entries(secrets)) assert.ok(!oneoff.output.includes(value), `${key} was printed`);

        const base = String(stack.outputs().url);
        const served = async (cookie?: string) => {
            const response = await fetch(new URL("/store/products", base), { headers: cookie ? { cookie } : {} });
            const body = (await response.json()) as { colour?: string };
            return `${response.status} ${body.colour} ${response.headers.get("x-medusa-colour") ?? "-"}`;
        };
        const preview = await stack.tool("tools/edgePreview.ts", []);
        assert.equal(preview.status, 0, preview.output);
        const token = /medusa_preview=([0-9a-f]{64})/.exec(preview.output)?.[1];
        assert.ok(token, `no token in:\n${preview.output}`);
        assert.equal(await served(`medusa_preview=${token}`), `200 ${idle} ${idle}`, "the operator's cookie reaches the idle colour, which the edge names");
        assert.equal(await served(), `200 ${live} -`, "everyone else stays on the live colour and is not told which");
        assert.equal((await stack.tool("tools/edgePreview.ts", ["--off"])).status, 0);
        assert.equal(await served(`medusa_preview=${token}`), `200 ${live} -`, "after --off the cookie is worth nothing");

        const hold = await stack.tool("tools/maintenance.ts", ["hold", "--hold", "60"]);
        assert.equal(hold.status, 0, hold.output);
        assert.match(hold.output, /^maintenance: hold hold=60$/m);
        const heldSince = performance.now();
        const held = served();
        const during = await stack.status();
        assert.equal(during.status, 1, `status says the shop is not serving its visitors:\n${during.output}`);
        assert.match(during.output, /^maintenance: hold \(up to 60 s\); preview: off$/m);
        const releasedAt = performance.now();
        const off = await stack.tool("tools/maintenance.ts", ["off"]);
        assert.equal(off.status, 0, off.output);
        assert.equal(await held, `200 ${live} -`, "a request held during maintenance is served when it ends");
        const finishedDuringHold = (load?.records ?? []).filter((r) => r.startedAt > heldSince + 500 && r.endedAt < releasedAt);
        assert.deepEqual(finishedDuringHold, [], "while held, no new request went through");
        await servedOnlyBy(live, performance.now());
    });

    it("manual promotion under load: up stages release J on the idle colour and leaves traffic put; npm run switch moves it", async function () {
        const live = liveColour() as Colour;
        const idle: Colour = live === "blue" ? "green" : "blue";
        stack.configure({ promotion: "manual" });
        try {
            releases.J = stack.commitRelease("J");
            const staged = await deploy("release J staged (promotion: manual)");
            assert.equal(staged.status, 0, `staging J failed:\n${staged.output}`);
            assert.match(staged.plan, new RegExp(`^stage: ${idle} is replaced with ${releases.J} and gated; traffic stays on ${live}`));
            assert.equal(liveColour(), live);
            assert.equal(stack.outputs().awaitingSwitch, idle);
            assert.equal(dockerd.docker(["inspect", "--format", "{{.State.Health.Status}}", names().server(idle)]).trim(), "healthy", "the staged colour passed its gate");
            await servedOnlyBy(live, performance.now());

            const again = await deploy("J again, still staged", ["--expect-no-changes"]);
            assert.equal(again.status, 0, `staging the same release again changed something:\n${again.output}`);

            const moved = log.record("npm run switch (J)", await stack.up([], { MEDUSA_DEPLOY_SWITCH: "1" }));
            assert.equal(moved.status, 0, `the switch failed:\n${moved.output}`);
            assert.match(moved.plan, new RegExp(`^switch back: traffic moves ${live} -> ${idle}, nothing rebuilt`));
            assert.equal(moved.timings?.phases["build+push"], undefined, "the switch built an image");
            assert.equal(liveColour(), idle);
            assert.equal(stack.outputs().awaitingSwitch, undefined);
            await servedOnlyBy(idle, performance.now());
        } finally {
            stack.configure({ promotion: "auto" });
        }
    });

    it("served every request of the whole sequence, and no secret is in plain text in the state", async function () {
        assert.ok(load, "the load never started");
        await load.stop();
        const { total, byColour, failed } = loadSummary(load.records);
        load = undefined;
        log.note(`load: ${total} requests (${JSON.stringify(byColour)}), ${failed.length} failed`);
        assert.ok(total > 500, `only ${total} requests in the whole sequence`);
        assert.equal(failed.length, 0, `requests failed: ${JSON.stringify(failed.slice(0, 5))}`);

        const state = stack.stateText();
        for (const [key, value] of Object.entries(secrets)) assert.ok(!state.includes(value), `${key} is in plain text in the state`);
    });

    it("a restore of the named backup brings back what a destructive change removed, and the shop serves again (offline while it runs)", async function () {
        const postgres = names().postgres;
        const psql = (sql: string) => dockerd.docker(["exec", "-i", postgres, "psql", "-U", "medusa", "-d", "medusa", "-v", "ON_ERROR_STOP=1", "-At"], { input: sql }).trim();
        psql("CREATE TABLE loyalty (customer text PRIMARY KEY, points integer NOT NULL); INSERT INTO loyalty SELECT 'c' || n, n * 7 FROM generate_series(1, 5000) n;");
        const before = psql("SELECT count(*), sum(points) FROM loyalty;");
        const backup = await stack.database(["backup"]);
        log.note(`npm run backup: exit ${backup.status} in ${(backup.ms / 1000).toFixed(1)} s`);
        assert.equal(backup.status, 0, backup.output);
        const name = /^backup: (\S+\.dump) /m.exec(backup.output)?.[1];
        assert.ok(name, `no backup named in:\n${backup.output}`);
        assert.match(name, new RegExp(`^${STACK}-manual-\\d{8}T\\d{6}Z\\.dump$`));

        // What a migration that drops a column and rewrites rows does.
        psql("ALTER TABLE loyalty DROP COLUMN points; DELETE FROM loyalty WHERE customer LIKE 'c1%';");
        assert.notEqual(psql("SELECT count(*) FROM loyalty;"), before.split("|")[0]);

        const refused = await stack.database(["restore"]);
        assert.notEqual(refused.status, 0);
        assert.match(refused.output, /--backup is required: name the backup to restore/);

        const restored = await stack.database(["restore", "--backup", name]);
        log.note(`npm run restore: exit ${restored.status} in ${(restored.ms / 1000).toFixed(1)} s`);
        assert.equal(restored.status, 0, restored.output);
        assert.equal(psql("SELECT count(*), sum(points) FROM loyalty;"), before, "the rows and the dropped column are back");
        assert.doesNotMatch(backup.output + restored.output, new RegExp(secrets.postgresPassword), "the database password reached the tool's output");
        const after = new LoadClient({ baseUrl: String(stack.outputs().url), workers: 2, pauseMs: 10 });
        after.start();
        await new Promise((resolve) => setTimeout(resolve, 3000));
        await after.stop();
        assert.ok(after.records.length > 20);
        assert.deepEqual(after.failures.map((f) => f.error), [], "the shop serves again after the restore");
    });
});

