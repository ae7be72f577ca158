// ColourSet: one colour's release: its image pulled by digest, the migration that must succeed
// before its server starts, the server, the health gate (host/health-gate.sh) that the traffic switch
// waits for, and, on the live colour only, the worker, started only once the other colour's worker is
// stopped (WorkerHandover). A colour this deploy does not replace is declared exactly as it runs,
// with changes to its settings ignored: a deploy never touches the colour it is not deploying.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Colour } from "../lib/colour";
import { healthGateCommandTimeout, healthGateEnv } from "../lib/healthGate";
import { HostNames, MEDUSA_PORT } from "../lib/hostNames";
import { deployBackupPrefix } from "../lib/databaseBackup";
import { DockerHost } from "./dockerHost";

export interface ColourSetArgs {
    colour: Colour;
    release: string;
    /** Digest-pinned image reference. */
    image: pulumi.Input<string>;
    /** True when this deploy (re)creates the colour; false keeps it exactly as it runs. */
    deploying: boolean;
    names: HostNames;
    host: DockerHost;
    network: docker.Network;
    /** Medusa env shared by server, worker and migration: NAME=value lines (secret). */
    appEnv: pulumi.Output<string[]>;
    /**
     * Names (never values) of env lines that are secret although not named like one (the
     * appSecretEnv entries): the migration and health gate mask their values in what they print.
     */
    secretEnvNames?: string[];
    healthTimeoutSeconds: number;
    /** The pre-migration backup, when on: the scripts' plain env and the password for stdin. */
    backup?: PreMigrationBackup;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

export interface PreMigrationBackup {
    env: Record<string, string>;
    /** Deploy backups kept (prune-backups.sh after each one). */
    keep: number;
    password: pulumi.Output<string>;
    /** The client image's pull, for an external database (the stack's Postgres image is pulled already). */
    dependsOn: pulumi.Resource[];
}

/**
 * Inputs of a kept colour's containers that come from the stack's settings or from this program
 * rather than from the release: a change to any of them would replace (delete, then create) the
 * colour that serves traffic, so they are ignored until the colour is deployed again.
 */
export const SETTINGS_INPUTS = ["envs", "healthcheck", "restart", "wait", "waitTimeout", "labels", "init", "networksAdvanced", "destroyGraceSeconds", "user", "command", "entrypoints"];

/**
 * Inputs of a kept colour's host commands (migration, health gate) that come from the program or the
 * stack's settings: a new script text, env or connection must not run them again on the colour that
 * serves traffic (a changed `create`, `stdin` or `connection` runs a command again, a changed
 * `triggers` entry replaces it).
 */
export const KEPT_COMMAND_INPUTS = ["create", "stdin", "triggers", "connection"];

export class ColourSet extends pulumi.ComponentResource {
    readonly server: docker.Container;
    readonly migration: pulumi.Resource;
    /** The pre-migration backup's command (its stdout names the dump), when backups are on. */
    readonly backup?: pulumi.Resource & { stdout: pulumi.Output<string> };
    /** The retention after it (its stdout's last line counts the backups kept and their bytes). */
    readonly backupRetention?: pulumi.Resource & { stdout: pulumi.Output<string> };
    /**
     * Succeeds once Docker calls the server healthy; fails at once when it turns unhealthy, exits or
     * crash-loops. The traffic switch depends on it.
     */
    readonly healthGate: pulumi.Resource;
    readonly image: docker.RemoteImage;
    readonly colour: Colour;
    readonly release: string;
    readonly imageRef: pulumi.Output<string>;
    private readonly args: ColourSetArgs;

    constructor(name: string, args: ColourSetArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:ColourSet", name, {}, opts);
        this.args = args;
        this.colour = args.colour;
        this.release = args.release;
        this.imageRef = pulumi.output(args.image);
        const { names, host, colour } = args;
        const provider = host.provider;

        // The colour's env lines: the migration's environment, and the health gate's secret values to
        // mask in the server log it quotes. Secret: on stdin only, never on a command line.
        const stdin = args.appEnv.apply((lines) => lines.join("\n") + "\n");

        this.image = new docker.RemoteImage(`${colour}-image`, { name: args.image, keepLocally: true }, { parent: this, provider, dependsOn: args.dependsOn });

        const kept = args.deploying ? [] : KEPT_COMMAND_INPUTS;
        // A rollback does not undo a migration: the database is dumped first, and a failed dump
        // stops the deploy before anything is migrated. Same triggers as the migration: a backup
        // for every migration of a new image, none for a kept colour.
        const beforeMigration: pulumi.Resource[] = [];
        if (args.backup) {
            const backup = host.runScript(
                `${colour}-backup`,
                {
                    script: "backup-database",
                    env: { ...args.backup.env, BACKUP_NAME_PREFIX: deployBackupPrefix(names.stack, args.release) },
                    stdin: pulumi.secret(args.backup.password.apply((p) => `${p}\n`)),
                    triggers: [this.imageRef],
                    privileged: true,
                },
                { parent: this, dependsOn: [args.network, ...args.backup.dependsOn, ...asResources(args.dependsOn)], ignoreChanges: kept },
            );
            this.backup = backup;
            const retention = host.runScript(
                `${colour}-backup-retention`,
                {
                    script: "prune-backups",
                    env: { BACKUP_DIR: args.backup.env.BACKUP_DIR, BACKUP_PREFIX: names.stack, KEEP_DEPLOY: String(args.backup.keep) },
                    triggers: [backup.stdout],
                    privileged: true,
                },
                { parent: this, dependsOn: [backup], ignoreChanges: kept },
            );
            this.backupRetention = retention;
            beforeMigration.push(backup, retention);
        }

        // The migration runs through the host's docker CLI (a failed run fails `up` and is retried by
        // the next one), with the secret env on stdin, never on a command line.
        this.migration = host.runScript(
            `${colour}-migration`,
            {
                script: "run-migration",
                env: {
                    MIGRATION_IMAGE: this.imageRef,
                    MIGRATION_NAME: names.migration(colour),
                    MIGRATION_NETWORK: names.network,
                    MIGRATION_COMMAND: "medusa db:migrate --execute-safe-links",
                    MIGRATION_SECRET_KEYS: (this.args.secretEnvNames ?? []).join(" "),
                },
                stdin,
                triggers: [this.imageRef],
                secretOutput: true,
            },
            { parent: this, dependsOn: [this.image, args.network, ...beforeMigration, ...asResources(args.dependsOn)], ignoreChanges: kept },
        );

        this.server = this.container("server", { MEDUSA_WORKER_MODE: "server" }, [this.migration]);
        this.healthGate = this.gate(stdin);
        this.registerOutputs({ release: this.release, image: this.imageRef });
    }

    /**
     * The health gate: host/health-gate.sh polls Docker's health status of the server just created
     * and fails as soon as Docker says unhealthy (or the process exits or crash-loops), quoting the
     * tail of its log with the secret values masked. Its triggers hold the server's id, so a new
     * server is gated again; a failed gate leaves no state (a failed command create records
     * nothing), so the next `up` runs it again even when the server itself is unchanged. A kept
     * colour's gate is declared exactly as the deploy that created it left it (KEPT_COMMAND_INPUTS):
     * it never runs again on an unchanged deploy.
     */
    private gate(stdin: pulumi.Output<string>): pulumi.Resource {
        const { colour, names, host } = this.args;
        return host.runScript(
            `${colour}-health-gate`,
            {
                script: "health-gate",
                env: { ...healthGateEnv({ container: names.server(colour), timeoutSeconds: this.args.healthTimeoutSeconds }), GATE_CONTAINER_ID: this.server.id, GATE_SECRET_KEYS: (this.args.secretEnvNames ?? []).join(" ") },
                stdin,
                triggers: [this.server.id],
            },
            {
                parent: this,
                dependsOn: [this.server],
                ignoreChanges: this.args.deploying ? [] : KEPT_COMMAND_INPUTS,
                // The script stops at healthTimeoutSeconds; Pulumi's limit is only a backstop.
                customTimeouts: { create: healthGateCommandTimeout(this.args.healthTimeoutSeconds), update: healthGateCommandTimeout(this.args.healthTimeoutSeconds) },
            },
        );
    }

    /**
     * The worker runs on the live colour only; BlueGreen adds it after traffic has moved and the
     * other colour's worker has stopped (`dependsOn`). `generation` (WorkerHandover.generation)
     * replaces it whenever a new handover ran, so a worker stopped by an earlier handover never
     * stays stopped in the state as "unchanged". A replacement removes the old container before it
     * creates the new one, so even then two workers never overlap.
     */
    addWorker(dependsOn: pulumi.Resource[], generation: pulumi.Input<string>): docker.Container {
        return this.container("worker", { MEDUSA_WORKER_MODE: "worker", DISABLE_MEDUSA_ADMIN: "true" }, dependsOn, {
            replacementTrigger: generation,
            deleteBeforeReplace: true,
        });
    }

    private container(
        role: "server" | "worker",
        roleEnv: Record<string, string>,
        dependsOn: pulumi.Resource[],
        extraOpts: Pick<pulumi.CustomResourceOptions, "replacementTrigger" | "deleteBeforeReplace"> = {},
    ): docker.Container {
        const { colour, names, host } = this.args;
        const fixedEnv = { ...roleEnv, PORT: String(MEDUSA_PORT), NODE_ENV: "production", MEDUSA_RELEASE: this.release, MEDUSA_COLOUR: colour };
        const envs = this.args.appEnv.apply((lines) => [...Object.entries(fixedEnv).map(([k, v]) => `${k}=${v}`), ...lines]);
        return new docker.Container(
            `${colour}-${role}`,
            {
                name: role === "server" ? names.server(colour) : names.worker(colour),
                image: this.image.imageId,
                envs,
                restart: "unless-stopped",
                // An init as PID 1 forwards SIGTERM even before Medusa installs its handler (it does
                // so only once the server is ready) and reaps Chromium helpers, whatever the base.
                init: true,
                networksAdvanced: [{ name: this.args.network.name, aliases: role === "server" ? [`${colour}-server`] : [] }],
                labels: [
                    { label: "medusa-deploy.colour", value: colour },
                    { label: "medusa-deploy.release", value: this.release },
                    { label: "medusa-deploy.role", value: role },
                ],
                // Docker's health check, which the health gate (host/health-gate.sh) reads; HAProxy
                // checks the same endpoint.
                healthcheck: {
                    tests: ["CMD", "node", "-e", `fetch('http://127.0.0.1:${MEDUSA_PORT}/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
                    interval: "5s",
                    // Each check starts a node process: on a busy host (a build beside the shop, or
                    // 2 cores under CI load) that alone took over 4 s, and three slow checks in a
                    // row called a serving server unhealthy while HAProxy's checks passed.
                    timeout: "10s",
                    startPeriod: "60s",
                    retries: 5,
                },
                // Not the provider's wait: it ends only on "healthy", so an unhealthy or crashed server
                // costs the whole waitTimeout, and on a timeout the container is already in the state,
                // so the next `up` with the same inputs does not wait again and the gate is lost. A
                // short waitTimeout would only add a failure that gates nothing. The health gate
                // command does it instead (see gate()).
                wait: false,
                destroyGraceSeconds: 30,
            },
            {
                parent: this,
                provider: host.provider,
                dependsOn,
                ignoreChanges: this.args.deploying ? [] : SETTINGS_INPUTS,
                ...extraOpts,
            },
        );
    }
}

function asResources(inputs: pulumi.Input<pulumi.Resource>[]): pulumi.Resource[] {
    return inputs.filter((r): r is pulumi.Resource => pulumi.Resource.isInstance(r));
}
