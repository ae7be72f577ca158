// MedusaImage: the system-packages base image and the app image, built with BuildKit on the host's
// named builder, pushed to the registry with a registry cache (mode=max), and kept in the registry
// when the resource goes away (rollback and promotion pull them by digest).
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { ImageSource } from "../lib/deployConfig";
import { registryHostOf } from "../lib/imageRef";
import { SecretValue } from "../lib/secretValue";

type BuildSource = Extract<ImageSource, { kind: "build" }>;

export interface MedusaImageArgs {
    source: BuildSource;
    /** Release name, used as the app image tag. @example "3f2a9c1b7d10" */
    release: string;
    /** Name of the docker-container builder (DockerHost.ensureBuilder). */
    builderName: string;
    registryAuth?: { username: string; password: SecretValue };
    /** Folder of this project (for docker/). */
    projectDir: string;
    provider: dockerBuild.Provider;
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /**
     * Declared as the state holds it (a deploy that builds nothing): the engine keeps every recorded
     * input (`ignoreChanges: ["*"]`), so nothing is built or pushed and the step is "same".
     */
    kept?: boolean;
}


export function cacheSettings(cacheRef: string) {
    return {
        cacheFrom: [{ registry: { ref: cacheRef } }],
        cacheTo: [{ registry: { ref: cacheRef, mode: dockerBuild.CacheMode.Max, imageManifest: true, ociMediaTypes: true } }],
    };
}

export class MedusaImage extends pulumi.ComponentResource {
    readonly base: dockerBuild.Image;
    readonly app: dockerBuild.Image;
    /** `<registry>:<release>@sha256:…`: what the colours run. */
    readonly ref: pulumi.Output<string>;

    constructor(name: string, args: MedusaImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:MedusaImage", name, {}, opts);
        const { source } = args;
        const dockerDir = path.join(args.projectDir, "docker");
        const registries = args.registryAuth
            ? [{ address: registryHostOf(source.registry), username: args.registryAuth.username, password: pulumi.secret(args.registryAuth.password.reveal()) }]
            : undefined;
        const common = {
            push: true,
            builder: { name: args.builderName },
            platforms: [source.platform as dockerBuild.Platform],
            registries,
            // Preview must not need the builder (commands do not run during preview), and a build
            // only belongs in `up`.
            buildOnPreview: false,
        };
        const childOpts: pulumi.CustomResourceOptions = {
            parent: this,
            provider: args.provider,
            dependsOn: args.dependsOn,
            retainOnDelete: true,
            ...(args.kept ? { ignoreChanges: ["*"] } : {}),
        };

        this.base = new dockerBuild.Image(
            "base",
            {
                ...common,
                ...cacheSettings(`${source.cacheRef}-base`),
                tags: [`${source.registry}:base`],
                context: { location: dockerDir },
                dockerfile: { location: path.join(dockerDir, "base.Dockerfile") },
                buildArgs: {
                    NODE_IMAGE: source.nodeImage,
                    SYSTEM_PACKAGES: source.systemPackages,
                    APP_UID: String(source.appUser.uid),
                    APP_GID: String(source.appUser.gid),
                },
            },
            childOpts,
        );

        this.app = new dockerBuild.Image(
            "app",
            {
                ...common,
                ...cacheSettings(source.cacheRef),
                tags: [`${source.registry}:${args.release}`],
                context: { location: path.resolve(args.projectDir, source.appPath) },
                dockerfile: { location: path.join(dockerDir, "medusa.Dockerfile") },
                // The base is pinned by digest, so a moved `base` tag can never change an app build.
                buildArgs: { NODE_IMAGE: source.nodeImage, BASE_IMAGE: this.base.ref },
                secrets: source.npmrc ? { npmrc: pulumi.secret(source.npmrc.reveal()) } : undefined,
            },
            childOpts,
        );
        this.ref = this.app.ref;
        this.registerOutputs({ ref: this.ref });
    }
}
