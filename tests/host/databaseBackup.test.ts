// host/backup-database.sh, host/restore-database.sh and host/prune-backups.sh (issue 12).
// Backup and restore run against a real Postgres 15 server in a container of a private dockerd in a
// network namespace of this suite's own (tests/support/netnsDockerd.ts: the stack's network and its
// DNS alias work, nothing touches the host's networking); the client containers use the same image,
// as PG_CLIENT_IMAGE is the stack's Postgres image on a host. The password is a distinctive string set
// with ALTER ROLE on stdin (tests/support/postgresContainer.ts), so finding it anywhere is a leak.
// Retention needs no docker: a folder of names.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { inlineHostLibraries } from "../../components/hostScripts";
import { ensureLocalPostgresImage } from "../support/localServiceImages";
import { NetnsDockerd } from "../support/netnsDockerd";
import { PostgresContainer } from "../support/postgresContainer";
import { PrivateDockerd, sleep, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";
import { sandboxRuntimeSettings } from "../support/sandboxRuntime";
import { commandLinesContaining } from "../support/processCommandLines";

const HOST = path.resolve(__dirname, "../../host");
const BACKUP = path.join(HOST, "backup-database.sh");
const RESTORE = path.join(HOST, "restore-database.sh");
const PRUNE = path.join(HOST, "prune-backups.sh");
const WORK = path.resolve(__dirname, "../../.test-work/database-backup");
const NETNS = "medusa-dbbk-it";
const NETWORK = "shop-net";
const PG_IMAGE = "medusa-deploy/postgres:15-local";
const SERVER = "shop-postgres";

// Unique per run. The password holds ':' and '\' (escaped in a pgpass line), quotes, '$' and spaces.
const TOKEN = `leak${randomBytes(8).toString("hex")}`;
const PASSWORD = `${TOKEN}:with\\back\\slash 'single' "double" $HOME:end`;

const LINE_BACKUP = /^backup: (\S+) ([0-9]+) bytes in ([0-9]+)s$/;
const LINE_RESTORE = /^restore: (\S+) ok in ([0-9]+)s$/;
const NOT_STARTED = "the migration was not started; the database was not changed";
const AS_BEFORE = "the database is as it was before the restore";

const lastLine = (text: string): string => text.trimEnd().split("\n").slice(-1)[0] ?? "";

/** Entries of a folder, sorted; [] when it does not exist. */
function listing(dir: string): string[] {
    try {
        return fs.readdirSync(dir).sort();
    } catch {
        return [];
    }
}


/** Regular files under `dir` (links not followed, files over 8 MB skipped) whose name or content holds `needle`. */
function filesContaining(dir: string, needle: string): string[] {
    let entries: fs.Dirent[];
    try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
        return [];
    }
    const found: string[] = [];
    for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.name.includes(needle)) found.push(full);
        if (entry.isDirectory()) found.push(...filesContaining(full, needle));
        else if (entry.isFile()) {
            try {
                if (fs.statSync(full).size > 8 * 1024 * 1024) continue;
                if (fs.readFileSync(full).includes(needle)) found.push(full);
            } catch {
                // unreadable or removed meanwhile
            }
        }
    }
    return found;
}

/** The scripts as medusa-deploy sends them to a host: libraries inlined, run from a folder with no lib/ next to them. */
function sentToHost(script: string, dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const text = inlineHostLibraries(fs.readFileSync(script, "utf8"), (library) => fs.readFileSync(path.join(HOST, library), "utf8"));
    assert.doesNotMatch(text, /medusa-deploy:inline|\/lib\/[a-z-]+\.sh/);
    const out = path.join(dir, path.basename(script));
    fs.writeFileSync(out, text, { mode: 0o755 });
    return out;
}

describe("host/backup-database.sh and host/restore-database.sh against a real Postgres (private dockerd)", function () {
    this.timeout(10 * 60 * 1000);
    let ns: NetnsDockerd;
    let dockerd: PrivateDockerd;
    let db: PostgresContainer;
    const backupDir = path.join(WORK, "backups");
    const tmpDir = path.join(WORK, "tmp");
    const timings: string[] = [];
    let serial = 0;

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 120000 }).trim();

    /** A fresh deploy-backup name. */
    const newName = (what = "t"): string => `shop-deploy-${what}${++serial}-20261202T10${String(serial % 60).padStart(2, "0")}00Z.dump`;

    function env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
        const base: NodeJS.ProcessEnv = {
            PATH: process.env.PATH,
            DOCKER_HOST: dockerd.host,
            TMPDIR: tmpDir,
            BACKUP_DIR: backupDir,
            PG_CLIENT_IMAGE: PG_IMAGE,
            PG_NETWORK: NETWORK,
            PGHOST: "postgres",
            PGUSER: "medusa",
            PGDATABASE: "medusa",
            PG_CONNECT_TIMEOUT: "5",
        };
        for (const [key, value] of Object.entries(extra)) {
            if (value === undefined) delete base[key];
            else base[key] = value;
        }
        return base;
    }

    const run = (script: string, extra: Record<string, string | undefined>, input: string | undefined = `${PASSWORD}\n`, onStart?: (pid: number) => void): Promise<ScriptRun> =>
        runShellScript(script, { env: env(extra), input, onStart, timeoutMs: 300000 });

    /** Nothing of the password anywhere the scripts write or print, and their temporary folders gone. */
    function assertNoLeak(result: ScriptRun, what: string): void {
        assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN), `${what}: the password reached the output`);
        assert.deepEqual(listing(tmpDir), [], `${what}: the script left something in its TMPDIR`);
        assert.deepEqual(filesContaining(backupDir, TOKEN), [], `${what}: the password is in a file or a file name in BACKUP_DIR`);
    }

    /** BACKUP_DIR holds exactly `names`: no temporary or partial file. */
    function assertBackupDirHolds(names: string[], what: string): void {
        assert.deepEqual(listing(backupDir), [...names].sort(), `${what}: BACKUP_DIR holds something else`);
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "nsenter", "ip", "tar", "ldd", "mount", "umount"], "apt-get install -y docker.io iproute2 util-linux");
        requireReal(this, "root (dockerd, network namespaces and tmpfs mounts need it)", isRoot(), "run the tests as root");
        requireReal(this, "Debian's PostgreSQL 15 server", fs.existsSync("/usr/lib/postgresql/15/bin/postgres"), "apt-get install -y postgresql-15");
        requireReal(this, "a static busybox", fs.existsSync("/bin/busybox") || fs.existsSync("/usr/bin/busybox"), "apt-get install -y busybox-static");

        const daemon = () => new NetnsDockerd(NETNS, path.join(WORK, "dockerd"), { ...sandboxRuntimeSettings() });
        // A run killed half-way leaves its namespace, daemon and mounts (the full-disk tmpfs): clear them.
        await daemon().stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
        fs.mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
        ns = daemon();
        await ns.start();
        dockerd = ns.dockerd;
        ensureLocalPostgresImage(dockerd, PG_IMAGE);
        docker(["network", "create", NETWORK]);
        db = new PostgresContainer(dockerd, { name: SERVER, image: PG_IMAGE, network: NETWORK, alias: "postgres" });
        await db.create(PASSWORD);
        db.psql(`
            CREATE TABLE product (id serial PRIMARY KEY, title text NOT NULL, weight integer, created_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX product_title_idx ON product (title);
            INSERT INTO product (title, weight)
                SELECT 'Product ' || g || CASE WHEN g % 7 = 0 THEN ' ✓ ünïcødé' ELSE '' END || CASE WHEN g % 11 = 0 THEN E'\\ttab\\nnew line \\\\ ''quoted''' ELSE '' END,
                       CASE WHEN g % 13 = 0 THEN NULL ELSE g * 3 END
                FROM generate_series(1, 5000) g;`);
    });

    after(async function () {
        if (ns) await ns.stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
        for (const line of timings) console.log(`      ${line}`);
    });

    it("refuses bad input with exit 2 and does nothing (BACKUP_DIR not even created)", async function () {
        const name = newName("bad");
        const cases: [string, Record<string, string | undefined>, string | undefined, RegExp][] = [
            ["no name", { BACKUP_NAME: undefined }, undefined, /BACKUP_NAME \(.*\) or BACKUP_NAME_PREFIX is required/],
            ["a name and a prefix", { BACKUP_NAME: name, BACKUP_NAME_PREFIX: "shop-deploy-x" }, undefined, /both set: give one/],
            ["a prefix with a folder", { BACKUP_NAME_PREFIX: "../shop" }, undefined, /is not a name prefix/],
            ["a folder in the name", { BACKUP_NAME: "../evil.dump" }, undefined, /is not a dump name/],
            ["a hidden name", { BACKUP_NAME: ".shop.dump" }, undefined, /is not a dump name/],
            ["an option-like name", { BACKUP_NAME: "-shop.dump" }, undefined, /is not a dump name/],
            ["not .dump", { BACKUP_NAME: "shop.sql" }, undefined, /is not a dump name/],
            ["a space", { BACKUP_NAME: "shop deploy.dump" }, undefined, /is not a dump name/],
            ["a relative BACKUP_DIR", { BACKUP_NAME: name, BACKUP_DIR: "backups" }, undefined, /is not an absolute path/],
            ["the password in the environment", { BACKUP_NAME: name, PGPASSWORD: "x" }, undefined, /PGPASSWORD or PGPASSFILE is set/],
            ["a connection string as database", { BACKUP_NAME: name, PGDATABASE: "postgres://medusa:x@postgres/medusa" }, undefined, /PGDATABASE .* has characters/],
            ["a socket folder as host", { BACKUP_NAME: name, PGHOST: "/var/run/postgresql" }, undefined, /PGHOST .* is not a host name/],
            ["no password", { BACKUP_NAME: name }, "", /no password on stdin/],
            ["two lines on stdin", { BACKUP_NAME: name }, `${PASSWORD}\nsomething else\n`, /more than one line/],
            ["an image not on the host", { BACKUP_NAME: name, PG_CLIENT_IMAGE: "postgres:15" }, undefined, /is not an image on this host/],
            ["a network not on the host", { BACKUP_NAME: name, PG_NETWORK: "no-such-net" }, undefined, /is not a docker network/],
        ];
        for (const [what, extra, input, message] of cases) {
            const result = await run(BACKUP, extra, input ?? `${PASSWORD}\n`);
            assert.equal(result.status, 2, `${what}: ${result.stdout}${result.stderr}`);
            assert.match(result.stderr, message, what);
            assert.ok(result.stderr.includes(NOT_STARTED), `${what}: ${result.stderr}`);
            assert.equal(fs.existsSync(backupDir), false, `${what}: BACKUP_DIR was created`);
            assertNoLeak(result, what);
        }

        // Folders safe-files.sh refuses: a link, writable by its group, owned by someone else.
        const real = path.join(WORK, "real-backups");
        fs.mkdirSync(real, { mode: 0o700 });
        const link = path.join(WORK, "linked-backups");
        fs.symlinkSync(real, link);
        const shared = path.join(WORK, "shared-backups");
        fs.mkdirSync(shared);
        fs.chmodSync(shared, 0o770);
        const foreign = path.join(WORK, "foreign-backups");
        fs.mkdirSync(foreign, { mode: 0o700 });
        fs.chownSync(foreign, 4321, 4321);
        for (const [dir, message] of [[link, /is a symbolic link/], [shared, /writable by its group or by others/], [foreign, /owned by uid 4321/]] as const) {
            const result = await run(BACKUP, { BACKUP_NAME: name, BACKUP_DIR: dir });
            assert.equal(result.status, 2, result.stderr);
            assert.match(result.stderr, message);
            assert.deepEqual(listing(dir), []);
        }

        // An existing name is never replaced.
        fs.mkdirSync(backupDir, { mode: 0o700 });
        fs.writeFileSync(path.join(backupDir, name), "an earlier backup");
        const existing = await run(BACKUP, { BACKUP_NAME: name });
        assert.equal(existing.status, 2, existing.stderr);
        assert.match(existing.stderr, /already exists: a backup is never replaced/);
        assert.equal(fs.readFileSync(path.join(backupDir, name), "utf8"), "an earlier backup");
        fs.rmSync(backupDir, { recursive: true });
    });

    it("backs up; a migration drops a column and changes rows; the restore brings the column and every row back exactly", async function () {
        assert.equal(fs.existsSync(backupDir), false);
        const before = db.snapshot(["product"]);
        assert.match(before, /weight integer YES/);
        assert.match(before, /^5000 rows/m);
        const sequence = db.psql("SELECT last_value FROM product_id_seq");

        const name = newName("abc");
        const backup = await run(BACKUP, { BACKUP_NAME: name });
        assert.equal(backup.status, 0, backup.stdout + backup.stderr);
        const line = LINE_BACKUP.exec(lastLine(backup.stdout));
        assert.ok(line, `last line: ${lastLine(backup.stdout)}`);
        assert.equal(line[1], name);
        const file = path.join(backupDir, name);
        const stat = fs.lstatSync(file);
        assert.ok(stat.isFile());
        assert.equal(Number(line[2]), stat.size);
        assert.equal(stat.mode & 0o777, 0o600, "the dump is 0600");
        assert.equal(fs.statSync(backupDir).mode & 0o777, 0o700, "BACKUP_DIR was created 0700");
        assert.equal(fs.readFileSync(file).subarray(0, 5).toString(), "PGDMP", "a custom-format dump");
        assertBackupDirHolds([name], "after the backup");
        assertNoLeak(backup, "backup");

        // The "migration": what a release's db:migrate might do, through psql in the server's container.
        db.psql(`
            ALTER TABLE product DROP COLUMN weight;
            UPDATE product SET title = upper(title) WHERE id % 2 = 0;
            DELETE FROM product WHERE id % 5 = 0;
            INSERT INTO product (title) SELECT 'new ' || g FROM generate_series(1, 300) g;
            CREATE INDEX product_created_idx ON product (created_at);`);
        const migrated = db.snapshot(["product"]);
        assert.notEqual(migrated, before);
        assert.doesNotMatch(migrated, /weight/);

        const restore = await run(RESTORE, { BACKUP_NAME: name });
        assert.equal(restore.status, 0, restore.stdout + restore.stderr);
        const restored = LINE_RESTORE.exec(lastLine(restore.stdout));
        assert.ok(restored, `last line: ${lastLine(restore.stdout)}`);
        assert.equal(restored[1], name);
        assert.equal(db.snapshot(["product"]), before, "schema, indexes and every row as at the backup");
        assert.equal(db.psql("SELECT last_value FROM product_id_seq"), sequence, "the sequence is back too");
        assert.equal(fs.lstatSync(file).size, stat.size, "the dump is untouched");
        assertNoLeak(restore, "restore");
    });

    it("a stopped server or an unknown host fails with exit 1, says the migration was not started, and leaves no file", async function () {
        const present = listing(backupDir);
        db.stop();
        try {
            const stopped = await run(BACKUP, { BACKUP_NAME: newName("stopped") });
            assert.equal(stopped.status, 1, stopped.stdout + stopped.stderr);
            assert.match(stopped.stderr, /pg_dump failed \(exit 1\)/);
            assert.match(stopped.stderr, /could not translate host name "postgres"|Connection refused|could not connect/);
            assert.ok(stopped.stderr.includes(NOT_STARTED), stopped.stderr);
            assert.doesNotMatch(stopped.stdout, /^backup: \S+ [0-9]+ bytes/m);
            assertBackupDirHolds(present, "server stopped");
            assertNoLeak(stopped, "server stopped");
        } finally {
            await db.start();
        }
        const unknown = await run(BACKUP, { BACKUP_NAME: newName("unknown"), PGHOST: "no-such-db.invalid" });
        assert.equal(unknown.status, 1, unknown.stderr);
        assert.match(unknown.stderr, /could not translate host name "no-such-db.invalid"/);
        assert.ok(unknown.stderr.includes(NOT_STARTED));
        assertBackupDirHolds(present, "unknown host");
        assertNoLeak(unknown, "unknown host");
    });

    it("a wrong password fails with exit 1 the same way and leaves no file", async function () {
        const present = listing(backupDir);
        const wrong = await run(BACKUP, { BACKUP_NAME: newName("wrongpw") }, `not-${TOKEN}-but-close\n`);
        assert.equal(wrong.status, 1, wrong.stderr);
        assert.match(wrong.stderr, /password authentication failed for user "medusa"/);
        assert.ok(wrong.stderr.includes(NOT_STARTED));
        assertBackupDirHolds(present, "wrong password");
        assertNoLeak(wrong, "wrong password");
    });

    it("a full disk (64 KiB tmpfs as BACKUP_DIR) fails with exit 1 and leaves no partial file", async function () {
        // Random bytes as hex: the dump (about 350 KB, half of it incompressible) cannot fit in 64 KiB.
        db.psql("CREATE TABLE filler AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS noise FROM generate_series(1, 10000) g");
        const full = path.join(WORK, "full");
        fs.mkdirSync(full);
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", full]);
        try {
            const result = await run(BACKUP, { BACKUP_NAME: newName("full"), BACKUP_DIR: full });
            assert.equal(result.status, 1, result.stdout + result.stderr);
            assert.match(result.stderr, /No space left on device/);
            assert.ok(result.stderr.includes(NOT_STARTED));
            assert.deepEqual(listing(full), [], "the partial dump was removed");
            assert.equal(execFileSync("df", ["-k", "--output=used", full], { encoding: "utf8" }).split("\n")[1].trim(), "0", "the tmpfs is empty again");
            assertNoLeak(result, "disk full");
        } finally {
            execFileSync("umount", [full]);
            db.psql("DROP TABLE filler");
        }
    });

    it("a restore that fails half-way (a truncated dump) exits 1 and leaves the database exactly as before", async function () {
        // A second table, after product in the dump, so that the truncation falls in the data.
        db.psql(`CREATE TABLE review (id serial PRIMARY KEY, product_id integer NOT NULL, body text NOT NULL);
                 INSERT INTO review (product_id, body) SELECT g % 5000 + 1, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g;`);
        const name = newName("twotables");
        const backup = await run(BACKUP, { BACKUP_NAME: name });
        assert.equal(backup.status, 0, backup.stderr);

        // Then the database moves on: the state a failed restore must leave exactly.
        db.psql(`ALTER TABLE product DROP COLUMN weight; DELETE FROM review WHERE id % 3 = 0; UPDATE product SET title = 'changed' WHERE id < 100;`);
        const before = db.snapshot(["product", "review"]);

        const dump = fs.readFileSync(path.join(backupDir, name));
        const truncated = newName("truncated");
        fs.writeFileSync(path.join(backupDir, truncated), dump.subarray(0, Math.floor(dump.length * 0.7)), { mode: 0o600 });
        const result = await run(RESTORE, { BACKUP_NAME: truncated });
        assert.equal(result.status, 1, result.stdout + result.stderr);
        // The table of contents read fine: pg_restore got as far as the data before it failed.
        assert.match(result.stderr, /pg_restore failed \(exit 1\)/);
        assert.match(result.stderr, /could not read from input file: end of file|unexpected end of file/);
        assert.ok(result.stderr.includes(AS_BEFORE), result.stderr);
        assert.equal(db.snapshot(["product", "review"]), before, "the single transaction was rolled back");
        assertNoLeak(result, "truncated restore");

        // The whole dump, restored, brings both tables back (and so the column).
        const good = await run(RESTORE, { BACKUP_NAME: name });
        assert.equal(good.status, 0, good.stderr);
        assert.match(db.snapshot(["product"]), /weight integer YES/);
        db.psql("DROP TABLE review");
    });

    it("restore refuses what it must not read: absent, a link, not a regular file, writable by others, not a dump", async function () {
        const outside = path.join(WORK, "outside.dump");
        const [good] = listing(backupDir).filter((n) => n.includes("-abc"));
        fs.copyFileSync(path.join(backupDir, good), outside);
        const linkName = newName("link");
        fs.symlinkSync(outside, path.join(backupDir, linkName));
        const dirName = newName("dir");
        fs.mkdirSync(path.join(backupDir, dirName));
        const sharedName = newName("shared");
        fs.copyFileSync(path.join(backupDir, good), path.join(backupDir, sharedName));
        fs.chmodSync(path.join(backupDir, sharedName), 0o620);
        const before = db.snapshot(["product"]);
        for (const [name, message] of [
            [newName("absent"), /does not exist/],
            [linkName, /is a symbolic link/],
            [dirName, /is not a regular file/],
            [sharedName, /writable by its group or by others/],
        ] as const) {
            const result = await run(RESTORE, { BACKUP_NAME: name });
            assert.equal(result.status, 2, `${name}: ${result.stderr}`);
            assert.match(result.stderr, message);
            assert.match(result.stderr, /nothing was done, the database is as it was before the restore/);
        }
        const notDump = newName("garbage");
        fs.writeFileSync(path.join(backupDir, notDump), "this is not a dump\n", { mode: 0o600 });
        const garbage = await run(RESTORE, { BACKUP_NAME: notDump });
        assert.equal(garbage.status, 1, garbage.stderr);
        assert.match(garbage.stderr, /is not a readable dump/);
        assert.ok(garbage.stderr.includes(AS_BEFORE));
        assert.equal(db.snapshot(["product"]), before);
        for (const name of [linkName, sharedName, notDump]) fs.rmSync(path.join(backupDir, name));
        fs.rmdirSync(path.join(backupDir, dirName));
        assertNoLeak(garbage, "not a dump");
    });

    it("~50 MB of rows: backup and restore timed; the password in no command line, container configuration, output or file", async function () {
        db.psql(`CREATE TABLE product_big (id bigint PRIMARY KEY, sku text NOT NULL, description text NOT NULL, price integer);
                 INSERT INTO product_big SELECT g, 'SKU-' || g, md5(g::text) || ' ' || md5((g * 7)::text) || ' ' || md5((g * 13)::text), g % 9973
                 FROM generate_series(1, 350000) g;
                 ANALYZE product_big;`);
        const bytes = Number(db.psql("SELECT pg_database_size(current_database())"));
        const tableBytes = Number(db.psql("SELECT pg_total_relation_size('product_big')"));
        const before = db.snapshot(["product", "product_big"]);

        /** Watches the client containers and every command line while a script runs. */
        const watch = (role: string) => {
            const seen = { containers: new Map<string, string>(), argv: [] as string[], polls: 0, stop: false };
            const loop = (async () => {
                while (!seen.stop) {
                    seen.polls++;
                    seen.argv.push(...commandLinesContaining(TOKEN));
                    const ids = spawnSync("docker", ["ps", "-q", "--no-trunc", "--filter", `label=medusa-deploy.role=database-${role}`], { env: dockerd.env(), encoding: "utf8" }).stdout.split("\n").filter(Boolean);
                    for (const id of ids) {
                        if (seen.containers.has(id)) continue;
                        const inspected = spawnSync("docker", ["inspect", id], { env: dockerd.env(), encoding: "utf8" });
                        if (inspected.status === 0) seen.containers.set(id, inspected.stdout);
                    }
                    await sleep(50);
                }
            })();
            return { seen, done: async () => { seen.stop = true; await loop; } };
        };

        const name = newName("big");
        const backupWatch = watch("backup");
        const backup = await run(BACKUP, { BACKUP_NAME: name });
        await backupWatch.done();
        assert.equal(backup.status, 0, backup.stdout + backup.stderr);
        const backupLine = LINE_BACKUP.exec(lastLine(backup.stdout));
        assert.ok(backupLine);

        db.psql("ALTER TABLE product_big DROP COLUMN price; DELETE FROM product_big WHERE id % 2 = 0; DROP INDEX product_title_idx;");
        const restoreWatch = watch("restore");
        const restore = await run(RESTORE, { BACKUP_NAME: name });
        await restoreWatch.done();
        assert.equal(restore.status, 0, restore.stdout + restore.stderr);
        const restoreLine = LINE_RESTORE.exec(lastLine(restore.stdout));
        assert.ok(restoreLine);
        assert.equal(db.snapshot(["product", "product_big"]), before);

        for (const [what, watched] of [["backup", backupWatch.seen], ["restore", restoreWatch.seen]] as const) {
            assert.deepEqual(watched.argv, [], `${what}: a process had the password in its command line`);
            // The dump and the read-back (backup), the check and the restore (restore): each caught running.
            assert.ok(watched.containers.size >= 1, `${what}: no client container was seen running (${watched.polls} polls)`);
            for (const [id, json] of watched.containers) {
                assert.ok(!json.includes(TOKEN), `${what}: docker inspect ${id} shows the password`);
                const [config] = JSON.parse(json) as { Config: { Env: string[]; User: string }; Args: string[]; HostConfig: { CapDrop: string[]; ReadonlyRootfs: boolean }; Mounts: { Source: string; Destination: string; RW: boolean }[] }[];
                assert.ok(config.Config.Env.includes("PGPASSFILE=/run/medusa-deploy/pgpass"), `${what}: ${config.Config.Env.join(" ")}`);
                assert.ok(!config.Config.Env.some((e) => e.startsWith("PGPASSWORD=")));
                assert.equal(config.Config.User, "0:0", "the client runs as the script's uid:gid");
                assert.deepEqual(config.HostConfig.CapDrop, ["ALL"]);
                assert.equal(config.HostConfig.ReadonlyRootfs, true);
                const pgpass = config.Mounts.find((m) => m.Destination === "/run/medusa-deploy/pgpass");
                assert.ok(pgpass && !pgpass.RW && pgpass.Source.startsWith(tmpDir + "/"), `${what}: the pgpass mount ${JSON.stringify(config.Mounts)}`);
            }
        }
        assertNoLeak(backup, "big backup");
        assertNoLeak(restore, "big restore");
        // Nothing under this suite's folder holds it: not the daemon's container configurations, not its logs.
        assert.deepEqual(filesContaining(WORK, TOKEN), [], "a file under the suite's folder holds the password");

        const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
        timings.push(
            `database ${mb(bytes)} (product_big ${mb(tableBytes)}, 350,000 rows): backup ${backupLine[3]} s (script line), ${(backup.ms / 1000).toFixed(1)} s end to end, dump ${mb(Number(backupLine[2]))} (${/backup: dumped in .*/.exec(backup.stdout)?.[0].replace("backup: ", "") ?? "?"}); ` +
                `restore ${restoreLine[2]} s (script line), ${(restore.ms / 1000).toFixed(1)} s end to end`,
        );
        db.psql("DROP TABLE product_big");
    });

    it("as sent to a host (libraries inlined, no host/lib next to the scripts): a backup named from BACKUP_NAME_PREFIX and the time, then its restore", async function () {
        const sent = path.join(WORK, "sent");
        const backupSent = sentToHost(BACKUP, sent);
        const restoreSent = sentToHost(RESTORE, sent);
        const before = db.snapshot(["product"]);
        const startedAt = Math.floor(Date.now() / 1000);
        const backup = await run(backupSent, { BACKUP_NAME_PREFIX: "shop-deploy-rel.42" });
        assert.equal(backup.status, 0, backup.stderr);
        const reported = LINE_BACKUP.exec(lastLine(backup.stdout));
        assert.ok(reported, lastLine(backup.stdout));
        const name = reported[1];
        // <prefix>-<UTC time>.dump, the time taken while the script ran: what prune-backups.sh reads.
        const stamp = /^shop-deploy-rel\.42-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z\.dump$/.exec(name);
        assert.ok(stamp, name);
        const [, y, mo, d, h, mi, se] = stamp.map(Number);
        const at = Date.UTC(y, mo - 1, d, h, mi, se) / 1000;
        assert.ok(at >= startedAt && at <= Math.ceil(Date.now() / 1000), `${name} is not the time of the run`);
        assert.ok(fs.lstatSync(path.join(backupDir, name)).isFile());
        db.psql("DELETE FROM product WHERE id < 1000");
        const restore = await run(restoreSent, { BACKUP_NAME: name });
        assert.equal(restore.status, 0, restore.stderr);
        assert.match(lastLine(restore.stdout), LINE_RESTORE);
        assert.equal(db.snapshot(["product"]), before);
        assertNoLeak(restore, "sent restore");
    });
});

describe("host/prune-backups.sh: retention by the timestamp in the names", function () {
    const dir = path.join(WORK, "prune");
    const outside = path.join(WORK, "prune-outside.dump");
    const NOW = Date.UTC(2026, 11, 2, 12, 0, 0) / 1000; // 2026-12-02T12:00:00Z
    const DAY = 86400;

    /** The UTC timestamp of epoch seconds, as the names carry it. */
    const stamp = (epoch: number): string => new Date(epoch * 1000).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");

    const prune = (extra: Record<string, string>, script = PRUNE): Promise<ScriptRun> =>
        runShellScript(script, { env: { PATH: process.env.PATH, BACKUP_DIR: dir, BACKUP_PREFIX: "shop", KEEP_DEPLOY: "3", KEEP_DAILY_DAYS: "7", NOW: String(NOW), ...extra } });

    function writeBackup(name: string, content: string, mtime?: number): void {
        const file = path.join(dir, name);
        fs.writeFileSync(file, content, { mode: 0o600 });
        if (mtime !== undefined) fs.utimesSync(file, mtime, mtime);
    }

    beforeEach(function () {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.chmodSync(dir, 0o700);
        fs.writeFileSync(outside, "not ours to remove");
    });

    after(function () {
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("removes exactly the expired backups: never other stacks', unrelated files, odd names or links", async function () {
        const deploys = [
            `shop-deploy-a1b2c3-${stamp(NOW - 10 * DAY)}.dump`,
            `shop-deploy-d4e5f6-${stamp(NOW - 5 * DAY)}.dump`,
            `shop-deploy-${stamp(NOW - 3 * DAY)}.dump`, // no id
            `shop-deploy-rel.2.0_rc-1-${stamp(NOW - 2 * DAY)}.dump`,
            `shop-deploy-zzz-${stamp(NOW - 1 * DAY)}.dump`,
        ];
        const dailies = [
            `shop-daily-${stamp(NOW - 30 * DAY)}.dump`,
            `shop-daily-${stamp(NOW - 8 * DAY)}.dump`,
            `shop-daily-${stamp(NOW - 7 * DAY)}.dump`, // exactly 7 days: within
            `shop-daily-${stamp(NOW - 7 * DAY - 1)}.dump`, // one second more: out
            `shop-daily-${stamp(NOW - 1 * DAY)}.dump`,
        ];
        const others = [
            `shop-eu-deploy-x-${stamp(NOW - 100 * DAY)}.dump`, // another stack
            `shop-eu-daily-${stamp(NOW - 100 * DAY)}.dump`,
            `other-daily-${stamp(NOW - 100 * DAY)}.dump`,
            `shop-deploy-x-20261302T000000Z.dump`, // month 13
            `shop-daily-20250229T030000Z.dump`, // not a leap year
            `shop-daily-x-${stamp(NOW - 100 * DAY)}.dump`, // a daily has no id
            `shop-deploy-old-${stamp(NOW - 100 * DAY)}.dump.bak`,
            `.shop-deploy-run-${stamp(NOW - 100 * DAY)}.dump.Ab12Cd`, // a backup still running
            "notes.txt",
        ];
        // mtimes the other way round: the oldest name is the newest file.
        deploys.forEach((name, i) => writeBackup(name, `deploy ${i}\n`, NOW - i * DAY));
        dailies.forEach((name, i) => writeBackup(name, `daily ${i}\n`, NOW - i * DAY));
        for (const name of others) writeBackup(name, "other\n", NOW - 200 * DAY);
        const linkName = `shop-deploy-link-${stamp(NOW - 50 * DAY)}.dump`;
        fs.symlinkSync(outside, path.join(dir, linkName));
        const folderName = `shop-daily-${stamp(NOW - 50 * DAY)}.dump`;
        fs.mkdirSync(path.join(dir, folderName));

        const expectRemoved = [deploys[0], deploys[1], dailies[0], dailies[1], dailies[3]];
        const expectKept = [deploys[2], deploys[3], deploys[4], dailies[2], dailies[4]];
        const result = await prune({});
        assert.equal(result.status, 0, result.stderr);
        const lines = result.stdout.trimEnd().split("\n");
        const removed = lines.slice(0, -1).map((l) => /^removed: (\S+) ([0-9]+) bytes \((.+)\)$/.exec(l)?.[1]);
        assert.deepEqual([...removed].sort(), [...expectRemoved].sort(), result.stdout);
        const keptBytes = expectKept.reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
        assert.equal(lines[lines.length - 1], `backups: 5 kept, ${keptBytes} bytes in ${dir}`);
        assert.deepEqual(listing(dir), [...expectKept, ...others, linkName, folderName].sort(), "exactly the expired ones are gone");
        assert.equal(fs.readFileSync(outside, "utf8"), "not ours to remove", "the link's target is untouched");
        assert.match(result.stderr, new RegExp(`left ${linkName}: a symbolic link`));
        assert.match(result.stderr, new RegExp(`left ${folderName}: not a regular file`));
        assert.match(result.stderr, /left shop-deploy-x-20261302T000000Z\.dump: not a backup name/);
        assert.match(result.stderr, /left shop-daily-20250229T030000Z\.dump: not a backup name/);

        // Nothing more to do: a second run removes nothing.
        const again = await prune({});
        assert.equal(again.status, 0, again.stderr);
        assert.equal(again.stdout.trim(), `backups: 5 kept, ${keptBytes} bytes in ${dir}`);
    });

    it("ages follow the calendar: leap days, year ends, and a later timestamp than now is kept", async function () {
        const now = Date.UTC(2028, 2, 1, 0, 0, 0) / 1000; // 2028-03-01, after a 29 February
        const names = {
            in: `shop-daily-20280223T000000Z.dump`, // 7 days before, counting 29 Feb
            out: `shop-daily-20280222T235959Z.dump`, // 7 days and 1 s
            yearEnd: `shop-daily-20271231T235959Z.dump`,
            future: `shop-daily-20280302T000000Z.dump`,
        };
        for (const name of Object.values(names)) writeBackup(name, "x");
        const result = await prune({ NOW: String(now) });
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(listing(dir), [names.in, names.future].sort(), result.stdout);
        assert.match(result.stderr, /kept shop-daily-20280302T000000Z\.dump: its timestamp is later than now/);
    });

    it("without KEEP_DAILY_DAYS daily backups are left alone; deploy backups are still pruned", async function () {
        const old = `shop-daily-${stamp(NOW - 400 * DAY)}.dump`;
        writeBackup(old, "daily");
        for (const days of [1, 2]) writeBackup(`shop-deploy-u${days}-${stamp(NOW - days * DAY)}.dump`, "deploy");
        for (const unset of [{ KEEP_DAILY_DAYS: "" }, {}]) {
            const result = await runShellScript(PRUNE, { env: { PATH: process.env.PATH, BACKUP_DIR: dir, BACKUP_PREFIX: "shop", KEEP_DEPLOY: "1", NOW: String(NOW), ...unset } });
            assert.equal(result.status, 0, result.stderr);
            assert.deepEqual(listing(dir), [old, `shop-deploy-u1-${stamp(NOW - DAY)}.dump`].sort());
            assert.match(lastLine(result.stdout), /^backups: 2 kept, 11 bytes in /);
        }
    });

    it("deploy backups with the same timestamp are ordered by name; KEEP_DEPLOY=1 keeps the newest only", async function () {
        const at = stamp(NOW - DAY);
        for (const id of ["aaa", "bbb", "ccc"]) writeBackup(`shop-deploy-${id}-${at}.dump`, id);
        writeBackup(`shop-deploy-old-${stamp(NOW - 2 * DAY)}.dump`, "old");
        const result = await prune({ KEEP_DEPLOY: "1" });
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(listing(dir), [`shop-deploy-ccc-${at}.dump`]);
        assert.match(lastLine(result.stdout), /^backups: 1 kept, 3 bytes in /);
    });

    it("refuses bad input and unsafe folders with exit 2, removing nothing; an absent folder is nothing to prune", async function () {
        const old = `shop-deploy-x-${stamp(NOW - 100 * DAY)}.dump`;
        for (const id of ["a", "b", "c", "d"]) writeBackup(`shop-deploy-${id}-${stamp(NOW - 100 * DAY)}.dump`, id);
        writeBackup(old, "old");
        const everything = listing(dir);
        for (const [extra, message] of [
            [{ KEEP_DEPLOY: "0" }, /KEEP_DEPLOY must be a whole number >= 1/],
            [{ KEEP_DEPLOY: "two" }, /KEEP_DEPLOY must be/],
            [{ KEEP_DAILY_DAYS: "0" }, /KEEP_DAILY_DAYS must be a whole number >= 1 .*leave it unset/],
            [{ KEEP_DAILY_DAYS: "7d" }, /KEEP_DAILY_DAYS must be/],
            [{ BACKUP_PREFIX: "" }, /BACKUP_PREFIX is required/],
            [{ BACKUP_PREFIX: "sh*p" }, /is not a stack name/],
            [{ BACKUP_DIR: "relative" }, /not an absolute path/],
            [{ NOW: "yesterday" }, /NOW must be epoch seconds/],
        ] as const) {
            const result = await prune(extra);
            assert.equal(result.status, 2, `${JSON.stringify(extra)}: ${result.stderr}`);
            assert.match(result.stderr, message);
            assert.match(result.stderr, /nothing was removed/);
        }
        const link = path.join(WORK, "prune-link");
        fs.rmSync(link, { force: true });
        fs.symlinkSync(dir, link);
        const linked = await prune({ BACKUP_DIR: link });
        assert.equal(linked.status, 2);
        assert.match(linked.stderr, /is a symbolic link/);
        fs.chmodSync(dir, 0o777);
        const open = await prune({});
        assert.equal(open.status, 2);
        assert.match(open.stderr, /writable by its group or by others/);
        fs.chmodSync(dir, 0o700);
        assert.deepEqual(listing(dir), everything, "nothing was removed");
        fs.rmSync(link);

        const absent = await prune({ BACKUP_DIR: path.join(WORK, "prune-absent") });
        assert.equal(absent.status, 0, absent.stderr);
        assert.equal(absent.stdout.trim(), `backups: 0 kept, 0 bytes in ${path.join(WORK, "prune-absent")}`);
    });

    it("as sent to a host (safe-files.sh inlined) it prunes the same", async function () {
        const script = sentToHost(PRUNE, path.join(WORK, "prune-sent"));
        for (const days of [1, 2, 3, 4]) writeBackup(`shop-deploy-r${days}-${stamp(NOW - days * DAY)}.dump`, "x");
        const result = await prune({ KEEP_DEPLOY: "2" }, script);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(listing(dir), [`shop-deploy-r1-${stamp(NOW - DAY)}.dump`, `shop-deploy-r2-${stamp(NOW - 2 * DAY)}.dump`]);
    });
});
