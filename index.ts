// medusa-deploy: config → previous state → release plan → host, image, blue/green → outputs.
// Everything that can be wrong with the settings or the deploy record is found before the first
// resource is declared.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";
import { BlueGreen } from "./components/blueGreen";
import { DockerHost } from "./components/dockerHost";
import { LocalRegistry } from "./components/localRegistry";
import { MedusaImage } from "./components/medusaImage";
import { ReleaseImagePrune } from "./components/releaseImagePrune";
import { ownStackName, readStackOutputs, stackNameFromConfig } from "./components/stackOutputs";
import { DeployConfig, parseDeployConfig } from "./lib/deployConfig";
import { gitRelease } from "./lib/gitRelease";
import { HostNames, hostNames } from "./lib/hostNames";
import { registryHostOf } from "./lib/imageRef";
import { DataVolume, parseRecordedVolumes, planDataVolumes, recordedVolumes as recordedDataVolumes } from "./lib/dataVolumes";
import { OUTPUT_NAMES, parsePreviousState } from "./lib/previousState";
import { parseRecordedBuild, planBuild, RecordedBuild } from "./lib/recordedBuild";
import { PromotedImage, resolvePromotion } from "./lib/promotion";
import { readRawConfig } from "./lib/pulumiConfigSource";
import { ALLOW_RESTART_VARIABLE, parseAllowedRestarts, parseRecordedServices, refuseUnannouncedRestarts, restartsOf, serviceSettings } from "./lib/serviceRestarts";
import { describePlan, planRelease, ReleasePlan, SWITCH_VARIABLE } from "./lib/releasePlan";

interface ProgramEnvironment {
    homeDir: string;
    /** The user running pulumi: host scripts on a local host without sudo run as this user. */
    user: { uid: number; gid: number };
    projectDir: string;
    /** The release the app folder holds (`release: auto`); throws when it cannot tell. */
    appRelease(appPath: string): string;
    /** Names the machine running pulumi and its buildx store, where builders are recorded. */
    machine: string;
    /** MEDUSA_DEPLOY_ALLOW_RESTART of this run: services this one deploy may restart. */
    allowRestart?: string;
    /** MEDUSA_DEPLOY_SWITCH of this run: "1" moves traffic to the colour staged by a manual promotion. */
    switchNow?: string;
}

const realEnvironment: ProgramEnvironment = {
    homeDir: os.homedir(),
    user: { uid: os.userInfo().uid, gid: os.userInfo().gid },
    projectDir: __dirname,
    appRelease: gitRelease,
    machine: deployingMachine(),
    allowRestart: process.env[ALLOW_RESTART_VARIABLE],
    switchNow: process.env[SWITCH_VARIABLE],
};

/** A short, stable id of this machine's buildx store (host name, user, BUILDX_CONFIG/DOCKER_CONFIG). */
function deployingMachine(): string {
    const store = process.env.BUILDX_CONFIG || path.join(process.env.DOCKER_CONFIG || path.join(os.homedir(), ".docker"), "buildx");
    return createHash("sha256").update(`${os.hostname()}\n${os.userInfo().uid}\n${store}`).digest("hex").slice(0, 16);
}

async function main(env: ProgramEnvironment = realEnvironment) {
    const config = parseDeployConfig(readRawConfig(), { stack: pulumi.getStack(), homeDir: env.homeDir });
    const recorded = await readStackOutputs("previous-deploy", ownStackName());
    const previous = parsePreviousState(config.stack, recorded);
    const recordedVolumes = parseRecordedVolumes(config.stack, recorded[OUTPUT_NAMES.dataVolumes]);
    const recordedBuild = parseRecordedBuild(config.stack, recorded[OUTPUT_NAMES.build]);
    const names = hostNames(config.stack, config.hostStateDir);
    const services = serviceSettings(config, names);
    refuseUnannouncedRestarts(restartsOf(parseRecordedServices(config.stack, recorded[OUTPUT_NAMES.services]), services), parseAllowedRestarts(env.allowRestart));
    const wanted = await wantedRelease(config, env);

    if (env.switchNow !== undefined && env.switchNow !== "" && env.switchNow !== "1") throw new Error(`${SWITCH_VARIABLE} must be 1 (move traffic to the staged colour) or unset, got "${env.switchNow}"; nothing was changed`);
    const plan = planRelease(previous, wanted.release, { promotion: config.promotion, switchNow: env.switchNow === "1" });
    pulumi.log.info(`release plan: ${describePlan(plan)}`);

    const host = new DockerHost("host", { config, homeDir: env.homeDir, localUid: env.user.uid, registryAddress: registryHostOf(wanted.promoted?.image ?? (config.image.kind === "build" ? config.image.registry : "")) });
    const registry = declareLocalRegistry(config, names, host, recordedVolumes);
    const { image: newImage, build } = declareImage(config, wanted, plan, host, registry, env, recordedBuild);

    const deployment = new BlueGreen("shop", {
        config,
        plan,
        names,
        host,
        newImage,
        newImageSource: wanted.promoted ? `${wanted.promoted.fromStack} (${wanted.promoted.release})` : "built",
        recordedVolumes,
    });
    // Once traffic has moved: the host keeps the colours' release images, not every release ever deployed.
    new ReleaseImagePrune("release-images", { host, plan, deployment });
    const volumes = planDataVolumes(
        [...deployment.dataVolumes, ...(registry?.container ? (["registry-data"] as const) : [])],
        recordedVolumes,
    );

    return {
        live: deployment.live,
        blue: deployment.deployed.blue,
        green: deployment.deployed.green,
        rollbackRelease: deployment.live.apply(() => plan.rollbackRelease),
        // Manual promotion: the colour healthy on the new release that `npm run switch` makes live.
        ...(plan.awaitingSwitch ? { awaitingSwitch: deployment.live.apply(() => plan.awaitingSwitch) } : {}),
        url: config.edge.publicUrl,
        dataVolumes: recordedDataVolumes(volumes),
        services,
        ...(build ? { build } : {}),
        // The dump a rollback runbook restores from: this deploy's, else the one recorded before.
        ...(deployment.lastBackup ? { lastBackup: deployment.lastBackup } : recorded[OUTPUT_NAMES.lastBackup] !== undefined ? { lastBackup: recorded[OUTPUT_NAMES.lastBackup] } : {}),
    };
}

/**
 * The dev stack's registry; or, once a stack stops running one, only its protected data volume
 * (the images it holds are every release the stack can roll back to).
 */
function declareLocalRegistry(config: DeployConfig, names: HostNames, host: DockerHost, recorded: ReadonlySet<DataVolume>): LocalRegistry | undefined {
    if (config.localRegistry) return new LocalRegistry("local-registry", { names, port: config.localRegistry.port, provider: host.provider });
    if (recorded.has("registry-data")) return new LocalRegistry("local-registry", { names, port: 0, provider: host.provider, volumeOnly: true });
    return undefined;
}

interface WantedRelease {
    release: string;
    /** Set in a promoting stack: the image the source stack verified. */
    promoted?: PromotedImage;
    /** Set in a building stack: the app folder. */
    appPath?: string;
}

/** The release this deploy wants: the promotion source's, the app folder's, or the pinned one. */
async function wantedRelease(config: DeployConfig, env: ProgramEnvironment): Promise<WantedRelease> {
    if (config.image.kind === "promote") {
        const fromStack = stackNameFromConfig(config.image.fromStack);
        const source = parsePreviousState(fromStack, await readStackOutputs("promotion-source", fromStack));
        const promoted = resolvePromotion(fromStack, source, config.release);
        return { release: promoted.release, promoted };
    }
    const appPath = path.resolve(env.projectDir, config.image.appPath);
    return { release: config.release === "auto" ? env.appRelease(appPath) : config.release, appPath };
}

/**
 * The image of the release the plan deploys, if it deploys one: the promoted digest, or a build.
 * Only the release the app folder holds can be built: building another release's tag from this
 * tree would push different code under that release's name. A deploy that deploys no new image
 * (unchanged, switch back) builds nothing: it declares the build the state holds exactly as it is
 * (lib/recordedBuild.ts), so the engine reports no change for it, and never re-tags a release a
 * colour already runs.
 */
function declareImage(
    config: DeployConfig,
    wanted: WantedRelease,
    plan: ReleasePlan,
    host: DockerHost,
    registry: LocalRegistry | undefined,
    env: ProgramEnvironment,
    recordedBuild: RecordedBuild | undefined,
): { image?: pulumi.Input<string>; build?: RecordedBuild } {
    const deploysNewImage = Object.values(plan.colours).some((c) => c?.image.kind === "new");
    if (config.image.kind === "promote") return { image: deploysNewImage ? wanted.promoted?.image : undefined };

    const release = wanted.release;
    const treeRelease = config.release === "auto" ? release : appFolderRelease(env, wanted.appPath ?? "", release);
    if (deploysNewImage && treeRelease !== release) {
        throw new Error(
            `release "${release}" is on neither colour, so it must be built, but ${config.image.appPath} holds release "${treeRelease}". ` +
                `Check out ${release} there, or set release to auto.`,
        );
    }
    const build = planBuild(deploysNewImage, release, recordedBuild);
    if (build.kind === "none") return {};
    const kept = build.kind === "keep";
    const builder = host.ensureBuilder({ release: build.release, machine: env.machine, kept });
    const image = new MedusaImage("image", {
        source: config.image,
        release: build.release,
        builderName: builder.name,
        registryAuth: config.registryAuth,
        projectDir: env.projectDir,
        provider: host.buildProvider(),
        dependsOn: [builder.resource, ...(registry?.container ? [registry.container] : [])],
        kept,
    });
    return { image: kept ? undefined : image.ref, build: { release: build.release } };
}

/** The release the app folder holds; an app outside git is taken to hold the release it is told. */
function appFolderRelease(env: ProgramEnvironment, appPath: string, requested: string): string {
    try {
        return env.appRelease(appPath);
    } catch {
        return requested;
    }
}

export = main;
