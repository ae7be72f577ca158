// ColourSet: one colour's release: its image pulled by digest, the migration that must succeed
// before its server starts, the server (created only once healthy), and, on the live colour only,
// the worker, started only once the other colour's worker is stopped (WorkerHandover). A colour this
// deploy does not replace is declared exactly as it runs, with changes to its settings ignored: a
// deploy never touches the colour it is not deploying.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Colour } from "../lib/colour";
import { HostNames, MEDUSA_PORT } from "../lib/hostNames";
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
    healthTimeoutSeconds: number;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * Inputs of a kept colour's containers that come from the stack's settings or from this program
 * rather than from the release: a change to any of them would replace (delete, then create) the
 * colour that serves traffic, so they are ignored until the colour is deployed again.
 */
export const SETTINGS_INPUTS = ["envs", "healthcheck", "restart", "wait", "waitTimeout", "labels", "init", "networksAdvanced", "destroyGraceSeconds", "user", "command", "entrypoints"];

export class ColourSet extends pulumi.ComponentResource {
    readonly server: docker.Container;
    readonly migration: pulumi.Resource;
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

        this.image = new docker.RemoteImage(`${colour}-image`, { name: args.image, keepLocally: true }, { parent: this, provider, dependsOn: args.dependsOn });

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
                },
                stdin: args.appEnv.apply((lines) => lines.join("\n") + "\n"),
                triggers: [this.imageRef],
                secretOutput: true,
            },
            { parent: this, dependsOn: [this.image, args.network, ...asResources(args.dependsOn)], ignoreChanges: args.deploying ? [] : ["create", "stdin", "triggers", "connection"] },
        );

        this.server = this.container("server", { MEDUSA_WORKER_MODE: "server" }, [this.migration]);
        this.registerOutputs({ release: this.release, image: this.imageRef });
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
                // Creation completes only when Docker reports the container healthy: this is the gate
                // the traffic switch waits for.
                healthcheck: {
                    tests: ["CMD", "node", "-e", `fetch('http://127.0.0.1:${MEDUSA_PORT}/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
                    interval: "5s",
                    timeout: "4s",
                    startPeriod: "60s",
                    retries: 3,
                },
                wait: role === "server",
                waitTimeout: this.args.healthTimeoutSeconds,
                destroyGraceSeconds: 30,
            },
            {
                parent: this,
                provider: host.provider,
                dependsOn,
                ignoreChanges: this.args.deploying ? [] : SETTINGS_INPUTS,
                // Creation waits for health; Pulumi's own 20-minute default must not cut it short.
                customTimeouts: { create: `${Math.ceil(this.args.healthTimeoutSeconds / 60) + 5}m` },
                ...extraOpts,
            },
        );
    }
}

function asResources(inputs: pulumi.Input<pulumi.Resource>[]): pulumi.Resource[] {
    return inputs.filter((r): r is pulumi.Resource => pulumi.Resource.isInstance(r));
}
