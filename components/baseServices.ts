// BaseServices: the private network both colours share, and Postgres and Redis (or the external URLs
// configured instead). Data volumes are protected and retained: no deploy, and no destroy, deletes
// the shop's data.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { DeployConfig } from "../lib/deployConfig";
import { HostNames } from "../lib/hostNames";
import { DataVolume, keptVolumeNotice } from "../lib/dataVolumes";
import { REDIS_CONFIG_PATH, REDIS_HEALTH_CHECK, renderRedisConfig } from "../lib/redisConfig";
import { POSTGRES_SHM_SIZE_MB } from "../lib/serviceRestarts";

export interface BaseServicesArgs {
    services: DeployConfig["services"];
    /** Password of the Redis container (a secret); unused when Redis is external. */
    redisPassword: pulumi.Input<string>;
    names: HostNames;
    provider: docker.Provider;
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /**
     * Data volumes an earlier deploy of this stack declared (lib/dataVolumes.ts): kept, volume only,
     * when their service is now external. @default none
     */
    recordedVolumes?: ReadonlySet<DataVolume>;
}

export class BaseServices extends pulumi.ComponentResource {
    readonly network: docker.Network;
    /** Secret. */
    readonly databaseUrl: pulumi.Output<string>;
    /** Secret (it carries the password). */
    readonly redisUrl: pulumi.Output<string>;
    /** Containers a colour needs running before it migrates. */
    readonly ready: pulumi.Resource[] = [];
    /** The data volumes declared (in use or kept). */
    readonly volumes: DataVolume[] = [];
    /** The Postgres container's image id, when Postgres is a container (its pg_dump makes backups). */
    readonly postgresImageId?: pulumi.Output<string>;

    constructor(name: string, args: BaseServicesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:BaseServices", name, {}, opts);
        const { names, provider } = args;
        const childOpts = { parent: this, provider, dependsOn: args.dependsOn };

        this.network = new docker.Network("network", { name: names.network, driver: "bridge" }, childOpts);

        const recorded = args.recordedVolumes ?? new Set<DataVolume>();
        const postgres = args.services.postgres;
        if (postgres.kind === "external") {
            this.databaseUrl = pulumi.secret(postgres.url.reveal());
            if (recorded.has("postgres-data")) this.keepUnusedVolume("postgres-data", names.postgresVolume, provider);
        } else {
            const password = pulumi.secret(postgres.password.reveal());
            const volume = this.dataVolume("postgres-data", names.postgresVolume, provider);
            const image = new docker.RemoteImage("postgres-image", { name: postgres.image, keepLocally: true }, childOpts);
            this.postgresImageId = image.imageId;
            const container = new docker.Container(
                "postgres",
                {
                    name: names.postgres,
                    image: image.imageId,
                    restart: "unless-stopped",
                    envs: pulumi.interpolate`POSTGRES_PASSWORD=${password}`.apply((p) => [p, "POSTGRES_USER=medusa", "POSTGRES_DB=medusa"]),
                    volumes: [{ volumeName: volume.name, containerPath: "/var/lib/postgresql/data" }],
                    // Postgres keeps parallel queries' shared memory in /dev/shm; Docker's 64 MB made
                    // them fail ("could not resize shared memory segment") on a 1 GB shop (bench/backup.ts).
                    shmSize: POSTGRES_SHM_SIZE_MB,
                    networksAdvanced: [{ name: this.network.name, aliases: ["postgres"] }],
                    healthcheck: { tests: ["CMD-SHELL", "pg_isready -U medusa -d medusa"], interval: "2s", timeout: "3s", retries: 30, startPeriod: "5s" },
                    wait: true,
                    waitTimeout: 120,
                },
                // POSTGRES_PASSWORD only seeds an empty data directory: a changed password must not
                // replace (stop) the database; rotate it with ALTER USER (README runbook).
                { ...childOpts, ignoreChanges: ["envs"] },
            );
            this.ready.push(container);
            this.databaseUrl = pulumi.secret(pulumi.interpolate`postgres://medusa:${password.apply(encodeURIComponent)}@${names.postgres}:5432/medusa`);
        }

        const redis = args.services.redis;
        if (redis.kind === "external") {
            this.redisUrl = pulumi.secret(redis.url.reveal());
            if (recorded.has("redis-data")) this.keepUnusedVolume("redis-data", names.redisVolume, provider);
        } else {
            const volume = this.dataVolume("redis-data", names.redisVolume, provider);
            const image = new docker.RemoteImage("redis-image", { name: redis.image, keepLocally: true }, childOpts);
            const password = pulumi.secret(args.redisPassword);
            const container = new docker.Container(
                "redis",
                {
                    name: names.redis,
                    image: image.imageId,
                    restart: "unless-stopped",
                    // The password is in a config file uploaded before the start (encrypted in the
                    // state as a secret), never on a command line or in the container's environment.
                    command: ["redis-server", REDIS_CONFIG_PATH],
                    uploads: [{ file: REDIS_CONFIG_PATH, content: pulumi.secret(password.apply(renderRedisConfig)) }],
                    volumes: [{ volumeName: volume.name, containerPath: "/data" }],
                    networksAdvanced: [{ name: this.network.name, aliases: ["redis"] }],
                    healthcheck: { tests: ["CMD-SHELL", REDIS_HEALTH_CHECK], interval: "2s", timeout: "3s", retries: 30 },
                    wait: true,
                    waitTimeout: 60,
                },
                childOpts,
            );
            this.ready.push(container);
            this.redisUrl = pulumi.secret(pulumi.interpolate`redis://:${password.apply(encodeURIComponent)}@${names.redis}:6379`);
        }
        this.registerOutputs({});
    }

    private dataVolume(name: DataVolume, volumeName: string, provider: docker.Provider): docker.Volume {
        this.volumes.push(name);
        return new docker.Volume(name, { name: volumeName }, { parent: this, provider, protect: true, retainOnDelete: true });
    }

    /** A volume whose service went external: still declared, so it is never deleted. */
    private keepUnusedVolume(name: DataVolume, volumeName: string, provider: docker.Provider): void {
        this.dataVolume(name, volumeName, provider);
        pulumi.log.warn(keptVolumeNotice(name, volumeName), this);
    }
}
