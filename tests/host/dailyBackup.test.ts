// host/daily-backup.sh in a container of the Postgres image, created the way
// components/dailyBackup.ts declares it (the same environment from lib/databaseBackup.ts, the same
// uploads as the docker provider sends them: a tar with full paths, owner and mode), against a real
// Postgres 15 on a private dockerd in a network namespace of this suite's own. The container runs
// as a uid that owns the backup folder and is nobody on this machine, as on a host without sudo.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { inlineHostLibraries } from "../../components/hostScripts";
import { DAILY_BACKUP_PATHS, dailyBackupEnv, pgpassLine } from "../../lib/databaseBackup";
import { SecretValue } from "../../lib/secretValue";
import { ensureLocalPostgresImage } from "../support/localServiceImages";
import { NetnsDockerd } from "../support/netnsDockerd";
import { PostgresContainer } from "../support/postgresContainer";
import { PrivateDockerd, sleep, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { sandboxRuntimeSettings } from "../support/sandboxRuntime";

const HOST = path.resolve(__dirname, "../../host");
const WORK = path.resolve(__dirname, "../../.test-work/daily-backup");
const NETNS = "medusa-daily-it";
const NETWORK = "shop-net";
const PG_IMAGE = "medusa-deploy/postgres:15-local";
const OWNER = 4242;
const TOKEN = `leak${randomBytes(8).toString("hex")}`;
const PASSWORD = `${TOKEN}:back\\slash 'q' $HOME`;

const stamp = (epochSeconds: number): string => new Date(epochSeconds * 1000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
const now = (): number => Math.floor(Date.now() / 1000);

/** The scripts as the component uploads them: libraries inlined. */
function hostScriptText(name: string): string {
    return inlineHostLibraries(fs.readFileSync(path.join(HOST, `${name}.sh`), "utf8"), (library) => fs.readFileSync(path.join(HOST, library), "utf8"));
}

/** A tar of files at absolute paths with owner and mode, as the docker provider builds one per upload. */
function uploadTar(dir: string, files: Array<{ file: string; content: string; mode: number }>): string {
    const root = path.join(dir, "upload-root");
    fs.rmSync(root, { recursive: true, force: true });
    for (const f of files) {
        const target = path.join(root, f.file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, f.content, { mode: f.mode });
        fs.chmodSync(target, f.mode);
        fs.chownSync(target, 0, 0);
    }
    const tar = path.join(dir, "upload.tar");
    execFileSync("tar", ["--numeric-owner", "-cf", tar, "-C", root, ...files.map((f) => f.file.replace(/^\//, ""))]);
    fs.rmSync(root, { recursive: true, force: true });
    return tar;
}

describe("host/daily-backup.sh: the daily backup container against a real Postgres (private dockerd)", function () {
    this.timeout(5 * 60 * 1000);
    let ns: NetnsDockerd;
    let dockerd: PrivateDockerd;
    let db: PostgresContainer;
    const backupDir = path.join(WORK, "backups");
    let serial = 0;

    const docker = (args: string[], input?: string): string => dockerd.docker(args, { timeoutMs: 120000, input }).trim();
    const logs = (name: string): string => {
        const r = spawnSync("docker", ["logs", name], { env: dockerd.env(), encoding: "utf8" });
        return r.stdout + r.stderr;
    };

    /** Starts the container as the component declares it; returns its name. */
    function startDaily(options: { pgHost?: string; keepDays?: number; at?: string } = {}): string {
        const name = `daily-${++serial}`;
        const target = { host: options.pgHost ?? "postgres", port: "5432", user: "medusa", database: "medusa", network: NETWORK, clientImage: PG_IMAGE, password: new SecretValue(PASSWORD) };
        const env = dailyBackupEnv(target, "shop", { at: options.at ?? "03:30", keepDays: options.keepDays ?? 14 }, 2);
        docker([
            "create", "--name", name, "--user", `${OWNER}:${OWNER}`, "--entrypoint", "sh", "--network", NETWORK,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--restart", "unless-stopped",
            "--mount", `type=bind,source=${backupDir},target=${DAILY_BACKUP_PATHS.backupDir}`,
            "--health-cmd", `sh ${DAILY_BACKUP_PATHS.script} health`, "--health-interval", "1s", "--health-retries", "1",
            ...env.flatMap((line) => ["-e", line]),
            PG_IMAGE, DAILY_BACKUP_PATHS.script,
        ]);
        const tar = uploadTar(WORK, [
            { file: DAILY_BACKUP_PATHS.script, content: hostScriptText("daily-backup"), mode: 0o555 },
            { file: DAILY_BACKUP_PATHS.pruneScript, content: hostScriptText("prune-backups"), mode: 0o555 },
            { file: DAILY_BACKUP_PATHS.passFile, content: pgpassLine(PASSWORD), mode: 0o444 },
        ]);
        // Without -a, as the provider sends uploads that name no owner.
        execFileSync("docker", ["cp", "-", `${name}:/`], { env: dockerd.env(), input: fs.readFileSync(tar) });
        fs.rmSync(tar);
        docker(["start", name]);
        return name;
    }

    async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 60000): Promise<T> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            const value = probe();
            if (value !== undefined) return value;
            await sleep(250);
        }
        throw new Error(`timed out waiting for ${what}`);
    }

    const health = (name: string): string => docker(["inspect", "--format", "{{.State.Health.Status}}", name]);
    const dailies = (): string[] => fs.readdirSync(backupDir).filter((n) => n.startsWith("shop-daily-")).sort();

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "nsenter", "ip", "tar"], "apt-get install -y docker.io iproute2 tar");
        requireReal(this, "root (dockerd and network namespaces need it)", isRoot(), "run the tests as root");
        requireReal(this, "Debian's PostgreSQL 15 server", fs.existsSync("/usr/lib/postgresql/15/bin/postgres"), "apt-get install -y postgresql-15");
        const daemon = () => new NetnsDockerd(NETNS, path.join(WORK, "dockerd"), { ...sandboxRuntimeSettings() });
        await daemon().stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
        fs.mkdirSync(backupDir, { recursive: true, mode: 0o700 });
        fs.chownSync(backupDir, OWNER, OWNER);
        ns = daemon();
        await ns.start();
        dockerd = ns.dockerd;
        ensureLocalPostgresImage(dockerd, PG_IMAGE);
        docker(["network", "create", NETWORK]);
        db = new PostgresContainer(dockerd, { name: "shop-postgres", image: PG_IMAGE, network: NETWORK, alias: "postgres" });
        await db.create(PASSWORD);
        db.psql("CREATE TABLE customer (id serial PRIMARY KEY, email text NOT NULL); INSERT INTO customer (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 2000) g;");
    });

    after(async function () {
        if (ns) await ns.stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("computes the next HH:MM in UTC strictly after now", () => {
        const next = (at: string, t: number) => execFileSync("sh", [path.join(HOST, "daily-backup.sh"), "next-run", String(t), at], { encoding: "utf8" }).trim();
        const midnight = Date.UTC(2026, 11, 2) / 1000;
        assert.equal(next("03:30", midnight), String(midnight + 3.5 * 3600));
        assert.equal(next("03:30", midnight + 3.5 * 3600), String(midnight + 86400 + 3.5 * 3600), "at the very second: tomorrow");
        assert.equal(next("00:00", midnight + 86399), String(midnight + 86400));
        assert.equal(next("23:59", midnight), String(midnight + 86340));
        const bad = spawnSync("sh", [path.join(HOST, "daily-backup.sh"), "next-run", "0", "24:00"], { encoding: "utf8" });
        assert.equal(bad.status, 2);
        assert.match(bad.stderr, /DAILY_AT '24:00' is not HH:MM/);
    });

    it("with no recent daily backup takes one at once, as the folder's owner, 0600, readable; retention drops exactly the expired ones", async () => {
        const t = now();
        const planted = {
            expired: `shop-daily-${stamp(t - 20 * 86400)}.dump`,
            recent: `shop-daily-${stamp(t - 2 * 86400)}.dump`,
            otherStack: `other-daily-${stamp(t - 90 * 86400)}.dump`,
            deploys: [1, 2, 3].map((i) => `shop-deploy-r${i}-${stamp(t - i * 3600)}.dump`),
        };
        for (const name of [planted.expired, planted.recent, planted.otherStack, ...planted.deploys]) {
            fs.writeFileSync(path.join(backupDir, name), "x", { mode: 0o600 });
            fs.chownSync(path.join(backupDir, name), OWNER, OWNER);
        }
        const name = startDaily();
        const taken = await waitFor("the catch-up backup", () => dailies().find((n) => n !== planted.expired && n !== planted.recent));
        const log = await waitFor("the retention report", () => (/^backups: \d+ kept/m.test(logs(name)) ? logs(name) : undefined));
        assert.match(log, new RegExp(`^daily-backup: ${taken.replace(/\./g, "\\.")} \\d+ bytes in \\d+s$`, "m"));
        assert.match(log, new RegExp(`removed: ${planted.expired.replace(/\./g, "\\.")} `));
        const file = fs.statSync(path.join(backupDir, taken));
        assert.equal(file.mode & 0o777, 0o600);
        assert.equal(file.uid, OWNER);
        // Kept: the recent daily, the new one, the other stack's file and the newest KEEP_DEPLOY (2) deploy backups.
        assert.deepEqual(fs.readdirSync(backupDir).sort(), [planted.otherStack, planted.recent, taken, ...planted.deploys.slice(0, 2)].sort());
        // It is a complete dump of the database: the table and its rows read back.
        const list = docker(["run", "--rm", "--entrypoint", "pg_restore", "--user", `${OWNER}:${OWNER}`, "--mount", `type=bind,source=${backupDir},target=/b,readonly`, PG_IMAGE, "--list", `/b/${taken}`]);
        assert.match(list, /TABLE DATA public customer/);
        assert.equal(await waitFor("healthy", () => (health(name) === "healthy" ? "healthy" : undefined)), "healthy");
        assert.ok(!log.includes(TOKEN), "the password is in the log");
        assert.ok(!docker(["inspect", name]).includes(TOKEN), "the password is in the container's configuration");
        assert.match(log, /next backup at \d{4}-\d\d-\d\dT03:30:00Z/);
        docker(["rm", "-f", name]);
    });

    it("with a daily backup less than a day old waits for its time, and a docker stop ends it at once (TERM handled)", async () => {
        const before = dailies();
        const name = startDaily({ at: "03:30" });
        await waitFor("the schedule line", () => (/next backup at/.test(logs(name)) ? true : undefined));
        await sleep(1500);
        assert.deepEqual(dailies(), before, "a backup was taken although the newest is less than a day old");
        docker(["stop", "--time", "20", name]);
        assert.equal(docker(["inspect", "--format", "{{.State.ExitCode}}", name]), "143", "the script did not end on TERM (Docker had to kill it)");
        docker(["rm", "-f", name]);
    });

    it("a database it cannot reach: the health check fails, the log says why, and nothing is left in the folder", async () => {
        for (const n of dailies()) fs.rmSync(path.join(backupDir, n));
        const before = fs.readdirSync(backupDir).sort();
        const name = startDaily({ pgHost: "no-such-postgres" });
        const log = await waitFor("the failure", () => (/daily-backup: failed: pg_dump failed/.test(logs(name)) ? logs(name) : undefined));
        assert.match(log, /next try at/);
        assert.equal(await waitFor("unhealthy", () => (health(name) === "unhealthy" ? "unhealthy" : undefined)), "unhealthy");
        assert.deepEqual(fs.readdirSync(backupDir).sort(), before, "a partial or temporary file was left");
        assert.ok(!log.includes(TOKEN));
        docker(["rm", "-f", name]);
    });
});
