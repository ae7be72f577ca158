// DailyBackup: the container that takes the stack's daily database backup (host/daily-backup.sh in
// the Postgres image). Docker is the scheduler: nothing to install on the host, the same on every
// host, restarted with the daemon, and part of the stack, so `pulumi up` keeps it current. Removing
// it (dailyBackup false, or a destroy) never touches the backups: they live in the host's folder.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { BackupTarget, DAILY_BACKUP_PATHS, dailyBackupEnv, pgpassLine } from "../lib/databaseBackup";
import { HostNames } from "../lib/hostNames";
import { hostScript } from "./hostScripts";

export interface DailyBackupArgs {
    target: BackupTarget;
    /** The Postgres client image's id on the host (pulled by the stack). */
    imageId: pulumi.Input<string>;
    /** Host folder of the backups (made by preflight, owned by `user`). */
    backupDir: string;
    daily: { at: string; keepDays: number };
    keepDeploy: number;
    /** `<uid>:<gid>` owning the backup folder: the container runs as it and so writes there alone. */
    user: pulumi.Input<string>;
    names: HostNames;
    provider: docker.Provider;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

export class DailyBackup extends pulumi.ComponentResource {
    readonly container: docker.Container;

    constructor(name: string, args: DailyBackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:DailyBackup", name, {}, opts);
        const { target, names } = args;
        const user = pulumi.output(args.user);
        this.container = new docker.Container(
            "daily-backup",
            {
                name: names.dailyBackup,
                image: args.imageId,
                restart: "unless-stopped",
                user,
                // The image's own entry script (which would initialise a server) never runs.
                entrypoints: ["sh", DAILY_BACKUP_PATHS.script],
                envs: dailyBackupEnv(target, names.stack, args.daily, args.keepDeploy),
                uploads: [
                    { file: DAILY_BACKUP_PATHS.script, content: hostScript("daily-backup"), permissions: "0555" },
                    { file: DAILY_BACKUP_PATHS.pruneScript, content: hostScript("prune-backups"), permissions: "0555" },
                    // Encrypted in the state as a secret. Readable: dockerd cannot give an upload
                    // to a uid the image has no account for, so the script copies it to a 0600 file.
                    { file: DAILY_BACKUP_PATHS.passFile, content: pulumi.secret(target.password.reveal()).apply(pgpassLine), permissions: "0444" },
                ],
                mounts: [{ type: "bind", source: args.backupDir, target: DAILY_BACKUP_PATHS.backupDir }],
                ...(target.network ? { networksAdvanced: [{ name: target.network }] } : {}),
                capabilities: { drops: ["ALL"] },
                securityOpts: ["no-new-privileges"],
                labels: [{ label: "medusa-deploy.role", value: "daily-backup" }],
                // Unhealthy while the last try failed: `docker ps` shows it, and the log says why.
                healthcheck: { tests: ["CMD", "sh", DAILY_BACKUP_PATHS.script, "health"], interval: "60s", timeout: "10s", retries: 1 },
            },
            { parent: this, provider: args.provider, dependsOn: args.dependsOn, deleteBeforeReplace: true },
        );
        this.registerOutputs({});
    }
}
