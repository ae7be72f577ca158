import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { backupEnv, backupTarget, parseBackupReport } from "../../lib/databaseBackup";
import { parseDeployConfig } from "../../lib/deployConfig";
import { hostNames } from "../../lib/hostNames";
import { isWrappedSecret, runProgram, valueOf } from "../support/pulumiProgram";
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
        const password = String((backup.inputs.stdin as { value: string }).value).trim();
        assert.ok(password.length >= 16);
        assert.ok(!create.includes(password), "the password is not on the command line");
        assert.deepEqual(run.outputs.lastBackup, { name: "staging-deploy-A-20261202T101500Z.dump", bytes: 4096, release: "A", folder: "/var/lib/medusa-deploy/staging/backups" });
    });

    it("takes none when turned off", async () => {
        const off = await runProgram({ stack: "staging", config: stackConfig("staging", { ...release("A"), preMigrationBackup: plainSetting("false") }), appRelease: "A" });
        assert.equal(off.resources.some((r) => r.name === "blue-backup"), false);
        assert.equal(off.outputs.lastBackup, undefined);
    });
});
