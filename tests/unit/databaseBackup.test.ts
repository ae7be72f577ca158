import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { backupEnv, backupTarget, parseBackupReport, parseRetentionReport, parseScriptUser, pgpassLine } from "../../lib/databaseBackup";
import { parseDeployConfig } from "../../lib/deployConfig";
import { hostNames } from "../../lib/hostNames";
import { isWrappedSecret, hostCommandStdin, runProgram, valueOf } from "../support/pulumiProgram";
import { dependsOnNames, plainSetting, release, stackConfig } from "./testStacks";

const ctx = { stack: "staging", homeDir: "/home/shop" };

describe("the pre-migration backup's target", () => {
    it("the stack's Postgres container: reached on the stack's network with its own image's client", () => {
        const config = parseDeployConfig(stackConfig("staging"), ctx);
        const target = backupTarget(config, hostNames("staging", config.hostStateDir));
        assert.deepEqual(
            { ...backupEnv(target, "/var/lib/medusa-deploy/staging/backups") },
            {
                BACKUP_DIR: "/var/lib/medusa-deploy/staging/backups",
                PG_CLIENT_IMAGE: config.services.postgres.kind === "container" ? config.services.postgres.image : "",
                PG_NETWORK: "medusa-staging",
                PGHOST: "medusa-staging-postgres",
                PGPORT: "5432",
                PGUSER: "medusa",
                PGDATABASE: "medusa",
            },
        );
    });

    it("an external databaseUrl: its parts in plain words, the password (decoded) apart, postgresImage as the client", () => {
        const raw = stackConfig("staging", { databaseUrl: { value: "postgres://shop%40eu:p%3Ass%2Fw0rd-Vq8rT2mZx4Lp9sKd@db.internal:6543/shop_prod?sslmode=require", secret: true } });
        delete raw.postgresPassword;
        const config = parseDeployConfig(raw, ctx);
        const target = backupTarget(config, hostNames("staging", config.hostStateDir));
        assert.equal(target.password.reveal(), "p:ss/w0rd-Vq8rT2mZx4Lp9sKd");
        const env = backupEnv(target, "/srv/backups");
        assert.deepEqual([env.PGHOST, env.PGPORT, env.PGUSER, env.PGDATABASE, env.PG_NETWORK, env.PGSSLMODE], ["db.internal", "6543", "shop@eu", "shop_prod", undefined, "require"]);
        assert.match(env.PG_CLIENT_IMAGE, /^postgres:16@sha256:/);
        assert.ok(!Object.values(env).some((v) => v.includes("w0rd")), "no part of the password in the plain env");
    });

    it("reads the script's report and refuses anything else", () => {
        assert.deepEqual(parseBackupReport("dumping\nbackup: staging-deploy-abc-20261202T101500Z.dump 123456 bytes in 2s\n"), { name: "staging-deploy-abc-20261202T101500Z.dump", bytes: 123456 });
        assert.throws(() => parseBackupReport("backup failed"), /did not report a backup/);
    });
});

describe("the pre-migration backup under Pulumi mocks", function () {
    this.timeout(30000);

    it("runs before the new colour migrates, with the password on stdin only, and names its dump in the outputs", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const backup = run.named("blue-backup");
        assert.ok((await dependsOnNames(run.named("blue-migration"))).includes("blue-backup"), "the migration waits for the backup");
        assert.ok((await dependsOnNames(run.named("blue-migration"))).includes("blue-backup-retention"));
        const create = String(await valueOf(backup.inputs.create as pulumi.Input<string>));
        assert.match(create, /^sudo -n env BACKUP_DIR='\/var\/lib\/medusa-deploy\/staging\/backups' BACKUP_NAME_PREFIX='staging-deploy-A' /);
        assert.ok(isWrappedSecret(backup.inputs.stdin), "the password on stdin is a secret");
        const { script, data } = hostCommandStdin(backup);
        assert.match(script, /^#!\/bin\/sh\n# backup-database\.sh/);
        const password = data.trim();
        assert.equal(data.split("\n").filter(Boolean).length, 1, "one line of data after the script: the password");
        assert.ok(password.length >= 16);
        assert.ok(!create.includes(password), "the password is not on the command line");
        assert.deepEqual(run.outputs.lastBackup, { name: "staging-deploy-A-20261202T101500Z.dump", bytes: 4096, release: "A", folder: "/var/lib/medusa-deploy/staging/backups", kept: 3, folderBytes: 12288 });
    });

    it("takes none when turned off", async () => {
        const off = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), preMigrationBackup: plainSetting("false") }), appRelease: "A" });
        assert.equal(off.resources.some((r) => r.name === "blue-backup"), false);
        assert.equal(off.outputs.lastBackup, undefined);
    });
});

describe("the daily backup container under Pulumi mocks", function () {
    this.timeout(30000);

    it("runs the Postgres image's client as the backup folder's owner, with the password only in a secret upload", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const daily = run.named("daily-backup");
        assert.equal(daily.inputs.name, "medusa-staging-daily-backup");
        // staging deploys through sudo: preflight reports root, the owner of the folder it made.
        assert.equal(daily.inputs.user, "0:0");
        assert.deepEqual(daily.inputs.entrypoints, ["sh", "/opt/medusa-deploy/daily-backup.sh"]);
        assert.deepEqual(daily.inputs.mounts, [{ type: "bind", source: "/var/lib/medusa-deploy/staging/backups", target: "/backups" }]);
        assert.deepEqual(daily.inputs.networksAdvanced, [{ name: "medusa-staging" }]);
        assert.deepEqual(daily.inputs.capabilities, { drops: ["ALL"] });
        const env = daily.inputs.envs as string[];
        for (const line of ["DAILY_AT=03:30", "KEEP_DAILY_DAYS=14", "KEEP_DEPLOY=10", "BACKUP_PREFIX=staging", "PGHOST=medusa-staging-postgres", "PASSWORD_FILE=/opt/medusa-deploy/pgpass"]) {
            assert.ok(env.includes(line), `${line} missing from ${env.join(" ")}`);
        }
        // The engine marks the whole list secret when an element is: so it is stored encrypted.
        assert.ok(isWrappedSecret(daily.inputs.uploads), "the uploads (the password file among them) are a secret");
        const uploads = (daily.inputs.uploads as { value: Array<Record<string, unknown>> }).value;
        const passFile = uploads.find((u) => u.file === "/opt/medusa-deploy/pgpass");
        assert.ok(passFile);
        assert.equal(passFile.permissions, "0444");
        const password = String(passFile.content).replace(/^\*:\*:\*:\*:/, "").trim();
        assert.ok(password.length >= 16);
        assert.ok(!JSON.stringify([env, daily.inputs.entrypoints, uploads.filter((u) => u !== passFile)]).includes(password), "the password is only in the password file");
        assert.ok((await dependsOnNames(daily)).includes("preflight"), "preflight makes the folder first");
        assert.ok((await dependsOnNames(daily)).includes("postgres"), "the database answers before the first catch-up backup");
    });

    it("follows the settings, and is not declared when turned off", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), dailyBackupTime: plainSetting("22:05"), backupKeepDailyDays: plainSetting("30") }), appRelease: "A" });
        const env = run.named("daily-backup").inputs.envs as string[];
        assert.ok(env.includes("DAILY_AT=22:05") && env.includes("KEEP_DAILY_DAYS=30"));
        const off = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), dailyBackup: plainSetting("false") }), appRelease: "A" });
        assert.equal(off.resources.some((r) => r.name === "daily-backup"), false);
    });

    it("refuses a time that is not HH:MM, naming the setting", () => {
        for (const bad of ["3:30", "24:00", "03:60", "0330", "noon"]) {
            assert.throws(() => parseDeployConfig(stackConfig("staging", { dailyBackupTime: plainSetting(bad) }), ctx), /dailyBackupTime.*HH:MM in UTC/, bad);
        }
        assert.throws(() => parseDeployConfig(stackConfig("staging", { backupKeepDailyDays: plainSetting("0") }), ctx), /backupKeepDailyDays/);
    });

    it("refuses a backupDir another user could take or a reboot would empty, naming what is at stake", () => {
        const refused = (dir: string) => () => parseDeployConfig(stackConfig("staging", { backupDir: plainSetting(dir) }), ctx);
        assert.throws(refused("/tmp/backups"), /backupDir "\/tmp\/backups" is under \/tmp, .*could create it first and then own the shop's database backups/);
        assert.throws(refused("/run/shop-backups"), /backupDir .*emptied at every boot: every backup would be gone after a reboot/);
        assert.throws(refused("backups"), /backupDir "backups" must be an absolute path/);
        // No socket lives there: a long path is fine.
        const long = `/srv/${"b".repeat(120)}`;
        assert.equal(parseDeployConfig(stackConfig("staging", { backupDir: plainSetting(long) }), ctx).backup.dir, long);
    });

    it("escapes the password for libpq's password file", () => {
        assert.equal(pgpassLine("a:b\\c"), "*:*:*:*:a\\:b\\\\c\n");
        assert.equal(parseScriptUser("preflight: host scripts run as 1001:1002\npreflight: ok\n"), "1001:1002");
        assert.throws(() => parseScriptUser("preflight: ok"), /did not report the user/);
        assert.deepEqual(parseRetentionReport("removed: a 1 bytes\nbackups: 4 kept, 99 bytes in /b"), { kept: 4, folderBytes: 99 });
    });
});
