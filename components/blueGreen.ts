// BlueGreen: wires a release plan to the host: shared services, one ColourSet per colour that has a
// release, the edge, the health-gated traffic switch, and the worker on the live colour. The stack
// outputs it exposes are derived from the switch, so a failed switch records nothing.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Colour, COLOURS, otherColour } from "../lib/colour";
import { DeployConfig } from "../lib/deployConfig";
import { HostNames } from "../lib/hostNames";
import { ReleasePlan } from "../lib/releasePlan";
import { BaseServices } from "./baseServices";
import { ColourSet, PreMigrationBackup } from "./colourSet";
import { backupEnv, backupTarget, parseBackupReport, parseRetentionReport } from "../lib/databaseBackup";
import { DailyBackup } from "./dailyBackup";
import { DockerHost } from "./dockerHost";
import { AssetHandover } from "./assetHandover";
import { Edge } from "./edge";
import { TrafficSwitch } from "./trafficSwitch";
import { WorkerHandover } from "./workerHandover";
import { DataVolume } from "../lib/dataVolumes";
import { deriveRedisPassword } from "../lib/redisConfig";

export interface BlueGreenArgs {
    config: DeployConfig;
    plan: ReleasePlan;
    names: HostNames;
    host: DockerHost;
    /** Digest-pinned image of the release the plan deploys (built or promoted); unused when nothing is deployed. */
    newImage?: pulumi.Input<string>;
    /** Where the new image came from, recorded in the outputs (e.g. "built" or the source stack). */
    newImageSource: string;
    /** Data volumes earlier deploys declared (kept even when their service went external). */
    recordedVolumes?: ReadonlySet<DataVolume>;
}

export interface LastBackupOutput {
    name: string;
    bytes: number;
    /** The release whose migration it preceded. */
    release: string;
    folder: string;
    /** The stack's backups in the folder after this one and its retention, and their bytes. */
    kept?: number;
    folderBytes?: number;
}

export interface DeployedColourOutput {
    release: string;
    image: string;
    source: string;
}

/** The Medusa env both roles and the migration get: NAME=value lines, secret as a whole. */
function appEnvLines(config: DeployConfig, services: BaseServices): pulumi.Output<string[]> {
    const app = config.app;
    const secretEnv: Record<string, unknown> = app.secretEnv ? (JSON.parse(app.secretEnv.reveal()) as Record<string, unknown>) : {};
    return pulumi.secret(
        pulumi.all([services.databaseUrl, services.redisUrl]).apply(([databaseUrl, redisUrl]) => [
            `DATABASE_URL=${databaseUrl}`,
            `REDIS_URL=${redisUrl}`,
            `JWT_SECRET=${app.jwtSecret.reveal()}`,
            `COOKIE_SECRET=${app.cookieSecret.reveal()}`,
            `STORE_CORS=${app.storeCors}`,
            `ADMIN_CORS=${app.adminCors}`,
            `AUTH_CORS=${app.authCors}`,
            ...Object.entries(app.env).map(([k, v]) => `${k}=${v}`),
            ...Object.entries(secretEnv).map(([k, v]) => `${k}=${String(v)}`),
        ]),
    );
}

/**
 * The image whose pg_dump/pg_restore the backups use, on the host: the Postgres container's own, or
 * for an external database postgresImage, pulled here like any other (the scripts never pull).
 */
function backupClientImage(config: DeployConfig, services: BaseServices, host: DockerHost, parent: pulumi.Resource): { id: pulumi.Output<string>; resource?: docker.RemoteImage } {
    if (services.postgresImageId) return { id: services.postgresImageId };
    const resource = new docker.RemoteImage("backup-client-image", { name: config.backup.clientImage, keepLocally: true }, { parent, provider: host.provider, dependsOn: host.ready });
    return { id: resource.imageId, resource };
}

/** What the colours' pre-migration backups need, when backups are on. */
function preMigrationBackup(config: DeployConfig, names: HostNames, client: { resource?: docker.RemoteImage }): PreMigrationBackup | undefined {
    if (!config.backup.enabled) return undefined;
    const target = backupTarget(config, names);
    const dependsOn = client.resource ? [client.resource] : [];
    return { env: backupEnv(target, config.backup.dir), keep: config.backup.keepDeploy, password: pulumi.secret(target.password.reveal()), dependsOn };
}

/** The appSecretEnv names (not values), so host scripts can mask those values in their output. */
function secretEnvNames(config: DeployConfig): string[] {
    return config.app.secretEnv ? Object.keys(JSON.parse(config.app.secretEnv.reveal()) as Record<string, unknown>).sort() : [];
}

export class BlueGreen extends pulumi.ComponentResource {
    readonly colours: Partial<Record<Colour, ColourSet>> = {};
    readonly live: pulumi.Output<Colour>;
    /** Data volumes of the base services declared by this deploy. */
    readonly dataVolumes: DataVolume[];
    /** The backup this deploy took before migrating, when it migrated a new release. */
    readonly lastBackup?: pulumi.Output<LastBackupOutput>;
    /** Per colour: release, image and its source, once the switch has succeeded. */
    readonly deployed: Partial<Record<Colour, pulumi.Output<DeployedColourOutput>>> = {};

    constructor(name: string, args: BlueGreenArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:BlueGreen", name, {}, opts);
        const { config, plan, names, host } = args;
        const parent = { parent: this };

        const services = new BaseServices(
            "services",
            {
                services: config.services,
                redisPassword: pulumi.secret(deriveRedisPassword(config.app.cookieSecret.reveal())),
                names,
                provider: host.provider,
                dependsOn: host.ready,
                recordedVolumes: args.recordedVolumes,
            },
            parent,
        );
        this.dataVolumes = services.volumes;
        const appEnv = appEnvLines(config, services);
        const client = config.backup.enabled || config.backup.daily ? backupClientImage(config, services, host, this) : undefined;
        const backup = client && preMigrationBackup(config, names, client);
        if (client && config.backup.daily) {
            new DailyBackup(
                "daily-backups",
                {
                    target: backupTarget(config, names),
                    imageId: client.id,
                    backupDir: config.backup.dir,
                    daily: config.backup.daily,
                    keepDeploy: config.backup.keepDeploy,
                    user: host.scriptUser,
                    names,
                    provider: host.provider,
                    // preflight made the folder; the database must answer before the first catch-up.
                    dependsOn: [...host.ready, ...services.ready, ...(client.resource ? [client.resource] : [])],
                },
                parent,
            );
        }

        for (const colour of COLOURS) {
            const planned = plan.colours[colour];
            if (!planned) continue;
            const deploying = planned.image.kind === "new";
            if (deploying && args.newImage === undefined) throw new Error(`internal: plan deploys ${colour} but no image was given`);
            this.colours[colour] = new ColourSet(
                colour,
                {
                    colour,
                    release: planned.release,
                    image: planned.image.kind === "new" ? (args.newImage as pulumi.Input<string>) : planned.image.ref,
                    deploying,
                    names,
                    host,
                    network: services.network,
                    appEnv,
                    secretEnvNames: secretEnvNames(config),
                    healthTimeoutSeconds: config.app.healthTimeoutSeconds,
                    backup,
                    dependsOn: [...services.ready, ...host.ready],
                },
                parent,
            );
        }

        for (const colour of COLOURS) {
            const set = this.colours[colour];
            if (set?.backup && plan.colours[colour]?.image.kind === "new") {
                const retention = set.backupRetention?.stdout ?? pulumi.output("");
                this.lastBackup = pulumi.all([set.backup.stdout, retention]).apply(([stdout, kept]) => ({
                    ...parseBackupReport(stdout),
                    release: set.release,
                    folder: config.backup.dir,
                    // The disk the stack's backups use, as the retention counted it after this one.
                    ...parseRetentionReport(kept),
                }));
            }
        }
        const edge = new Edge("edge", { edge: config.edge, names, host, network: services.network, edgeUser: config.edgeUser, dependsOn: host.ready }, parent);
        const target = this.colours[plan.live];
        if (!target) throw new Error(`internal: plan makes ${plan.live} live but declares no release for it`);

        const other = otherColour(plan.live);
        const assetHandover = new AssetHandover(
            "asset-handover",
            {
                target: plan.live,
                host,
                edge,
                servers: { blue: names.server("blue"), green: names.server("green") },
                serverIds: [target.server.id, ...(this.colours[other] ? [this.colours[other].server.id] : [])],
                dependsOn: [target.healthGate, target.migration],
            },
            parent,
        );
        const trafficSwitch = new TrafficSwitch(
            "switch",
            {
                target: plan.live,
                host,
                edge,
                targetServerId: target.server.id,
                watch: { seconds: config.switchWatch.seconds, maxErrorRate: config.switchWatch.maxErrorRate },
                // The server's health gate, not the server alone: Docker must call it healthy first.
                dependsOn: [target.healthGate, target.migration, assetHandover.done],
            },
            parent,
        );
        // Stop the other colour's worker once traffic has moved, then start the live colour's.
        const handover = new WorkerHandover("worker-handover", { plan, names, host, targetServerId: target.server.id, after: [trafficSwitch] }, parent);
        target.addWorker([trafficSwitch, handover], handover.generation);
        this.live = trafficSwitch.live;

        for (const colour of COLOURS) {
            const set = this.colours[colour];
            const planned = plan.colours[colour];
            if (!set || !planned) continue;
            const source = planned.image.kind === "new" ? args.newImageSource : (planned.image.source ?? "previous deploy");
            this.deployed[colour] = pulumi
                .all([trafficSwitch.live, set.imageRef])
                .apply(([, image]) => ({ release: set.release, image, source }));
        }
        this.registerOutputs({ live: this.live });
    }
}
