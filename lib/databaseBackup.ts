// What the pre-migration backup needs to reach the shop's database, and how its report is read. A
// rollback does not undo a migration, so before a new release migrates, host/backup-database.sh
// dumps the database (pg_dump custom format, with the Postgres image's own client) into the stack's
// backup folder on the host. Pure: no I/O.
import { DeployConfig } from "./deployConfig";
import { HostNames } from "./hostNames";
import { SecretValue } from "./secretValue";

export interface BackupTarget {
    /** Plain libpq parameters (never the password). */
    host: string;
    port: string;
    user: string;
    database: string;
    /** The stack's network, when the database is its Postgres container. */
    network?: string;
    /** Image whose pg_dump/pg_restore are used: the server's own, or newer for an external one. */
    clientImage: string;
    /** libpq sslmode from an external URL's query, e.g. require. */
    sslMode?: string;
    password: SecretValue;
}

/** Where the stack's database is, for the backup and restore scripts. */
export function backupTarget(config: DeployConfig, names: HostNames): BackupTarget {
    const postgres = config.services.postgres;
    if (postgres.kind === "container") {
        return { host: names.postgres, port: "5432", user: "medusa", database: "medusa", network: names.network, clientImage: postgres.image, password: postgres.password };
    }
    const url = new URL(postgres.url.reveal());
    return {
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || "5432",
        user: decodeURIComponent(url.username),
        database: decodeURIComponent(url.pathname.replace(/^\//, "")) || decodeURIComponent(url.username),
        clientImage: config.backup.clientImage,
        sslMode: url.searchParams.get("sslmode") ?? undefined,
        password: new SecretValue(decodeURIComponent(url.password)),
    };
}

/** The scripts' plain environment for `target` (the password goes on stdin). */
export function backupEnv(target: BackupTarget, backupDir: string): Record<string, string> {
    return {
        BACKUP_DIR: backupDir,
        PG_CLIENT_IMAGE: target.clientImage,
        ...(target.network ? { PG_NETWORK: target.network } : {}),
        PGHOST: target.host,
        PGPORT: target.port,
        PGUSER: target.user,
        PGDATABASE: target.database,
        ...(target.sslMode ? { PGSSLMODE: target.sslMode } : {}),
    };
}

/**
 * Start of the name of the backup a deploy takes before migrating `release`; the script adds the
 * UTC time (`-YYYYMMDDTHHMMSSZ.dump`), which orders them and drives retention.
 */
export function deployBackupPrefix(stack: string, release: string): string {
    return `${stack}-deploy-${release}`;
}

export interface BackupReport {
    name: string;
    bytes: number;
}

/** The script's last line: `backup: <name> <bytes> bytes in <seconds>s`. */
export function parseBackupReport(stdout: string): BackupReport {
    const line = stdout.trim().split("\n").pop() ?? "";
    const m = /^backup: (\S+\.dump) (\d+) bytes in /.exec(line);
    if (!m) throw new Error(`backup-database did not report a backup (last line: ${JSON.stringify(line)})`);
    return { name: m[1], bytes: Number(m[2]) };
}

/** The retention step's last line: `backups: <count> kept, <bytes> bytes in <folder>`. */
export function parseRetentionReport(stdout: string): { kept: number; folderBytes: number } | undefined {
    const line = stdout.trim().split("\n").pop() ?? "";
    const m = /^backups: (\d+) kept, (\d+) bytes in /.exec(line);
    return m ? { kept: Number(m[1]), folderBytes: Number(m[2]) } : undefined;
}

/**
 * A libpq password file's one line, matching any server (the file serves one connection): `:` and
 * `\` in the password escaped with `\`.
 */
export function pgpassLine(password: string): string {
    return `*:*:*:*:${password.replace(/[\\:]/g, (c) => `\\${c}`)}\n`;
}

/** Where the daily backup container sees the host's backup folder, its scripts and its password. */
export const DAILY_BACKUP_PATHS = {
    backupDir: "/backups",
    script: "/opt/medusa-deploy/daily-backup.sh",
    pruneScript: "/opt/medusa-deploy/prune-backups.sh",
    passFile: "/opt/medusa-deploy/pgpass",
} as const;

/** host/daily-backup.sh's environment (plain; the password is in the uploaded password file). */
export function dailyBackupEnv(target: BackupTarget, stack: string, daily: { at: string; keepDays: number }, keepDeploy: number): string[] {
    const env: Record<string, string> = {
        BACKUP_DIR: DAILY_BACKUP_PATHS.backupDir,
        BACKUP_PREFIX: stack,
        DAILY_AT: daily.at,
        KEEP_DAILY_DAYS: String(daily.keepDays),
        KEEP_DEPLOY: String(keepDeploy),
        PRUNE_SCRIPT: DAILY_BACKUP_PATHS.pruneScript,
        PGHOST: target.host,
        PGPORT: target.port,
        PGUSER: target.user,
        PGDATABASE: target.database,
        PASSWORD_FILE: DAILY_BACKUP_PATHS.passFile,
        PGCONNECT_TIMEOUT: "10",
        ...(target.sslMode ? { PGSSLMODE: target.sslMode } : {}),
    };
    return Object.entries(env).map(([key, value]) => `${key}=${value}`);
}

/** preflight.sh's report of the uid:gid host scripts run as (the backup folder's owner). */
export function parseScriptUser(stdout: string): string {
    const m = /^preflight: host scripts run as (\d+):(\d+)$/m.exec(stdout);
    if (!m) throw new Error(`preflight did not report the user host scripts run as (it printed ${JSON.stringify(stdout.trim().slice(-200))})`);
    return `${m[1]}:${m[2]}`;
}
