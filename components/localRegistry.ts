// LocalRegistry: for the dev stack, a registry container on 127.0.0.1 that receives the pushes and
// the BuildKit registry cache, so the dev stack exercises the same image path as staging.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { keptVolumeNotice } from "../lib/dataVolumes";
import { HostNames } from "../lib/hostNames";

export interface LocalRegistryArgs {
    names: HostNames;
    /** Host port on 127.0.0.1. @example 5000 */
    port: number;
    /** @default "registry:2" */
    image?: string;
    provider: docker.Provider;
    /**
     * The stack no longer runs a registry but an earlier deploy did: declare only its protected
     * data volume, so the images it holds are never deleted. @default false
     */
    volumeOnly?: boolean;
}

export class LocalRegistry extends pulumi.ComponentResource {
    /** Undefined in volume-only mode. */
    readonly container?: docker.Container;
    /** `localhost:<port>` */
    readonly address: string;

    constructor(name: string, args: LocalRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:LocalRegistry", name, {}, opts);
        const provider = args.provider;
        // The registry's data is every image the dev stack can roll back to: keep it.
        const volume = new docker.Volume("registry-data", { name: args.names.registryVolume }, { parent: this, provider, protect: true, retainOnDelete: true });
        this.address = `localhost:${args.port}`;
        if (args.volumeOnly) {
            pulumi.log.warn(keptVolumeNotice("registry-data", args.names.registryVolume), this);
            this.registerOutputs({});
            return;
        }
        const image = new docker.RemoteImage("registry-image", { name: args.image ?? "registry:2", keepLocally: true }, { parent: this, provider });
        this.container = new docker.Container(
            "registry",
            {
                name: args.names.registry,
                image: image.imageId,
                restart: "unless-stopped",
                ports: [{ internal: 5000, external: args.port, ip: "127.0.0.1" }],
                volumes: [{ volumeName: volume.name, containerPath: "/var/lib/registry" }],
                envs: ["REGISTRY_STORAGE_DELETE_ENABLED=true"],
            },
            { parent: this, provider },
        );
        this.registerOutputs({});
    }
}
