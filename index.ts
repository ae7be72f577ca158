// medusa-deploy: config → previous state → release plan → host, image, blue/green → outputs.
// Everything that can be wrong with the settings or the deploy record is found before the first
// resource is declared.
import * as pulumi from "@pulumi/pulumi";
import * as os from "node:os";
import * as path from "node:path";
import { BlueGreen } from "./components/blueGreen";
import { DockerHost } from "./components/dockerHost";
import { LocalRegistry } from "./components/localRegistry";
import { MedusaImage } from "./components/medusaImage";
import { ownStackName, readStackOutputs } from "./components/stackOutputs";
import { parseDeployConfig } from "./lib/deployConfig";
import { gitRelease } from "./lib/gitRelease";
import { hostNames } from "./lib/hostNames";
import { registryHostOf } from "./lib/imageRef";
import { parsePreviousState } from "./lib/previousState";
import { resolvePromotion } from "./lib/promotion";
import { readRawConfig } from "./lib/pulumiConfigSource";
import { describePlan, planRelease } from "./lib/releasePlan";

interface ProgramEnvironment {
    homeDir: string;
    projectDir: string;
    /** The release the app folder holds (`release: auto`); throws when it cannot tell. */
    appRelease(appPath: string): string;
}

const realEnvironment: ProgramEnvironment = { homeDir: os.homedir(), projectDir: __dirname, appRelease: gitRelease };

async function main(env: ProgramEnvironment = realEnvironment) {
    const config = parseDeployConfig(readRawConfig(), { stack: pulumi.getStack(), homeDir: env.homeDir });
    const previous = parsePreviousState(config.stack, await readStackOutputs("previous-deploy", ownStackName()));

    // Which release is wanted, and where its image comes from.
    let release: string;
    let promoted: ReturnType<typeof resolvePromotion> | undefined;
    let appPath = "";
    if (config.image.kind === "promote") {
        const source = parsePreviousState(config.image.fromStack, await readStackOutputs("promotion-source", config.image.fromStack));
        promoted = resolvePromotion(config.image.fromStack, source, config.release);
        release = promoted.release;
    } else {
        appPath = path.resolve(env.projectDir, config.image.appPath);
        release = config.release === "auto" ? env.appRelease(appPath) : config.release;
    }

    const plan = planRelease(previous, release);
    pulumi.log.info(`release plan: ${describePlan(plan)}`);
    const deploysNewImage = Object.values(plan.colours).some((c) => c?.image.kind === "new");

    const names = hostNames(config.stack, config.hostStateDir);
    const registryAddress = registryHostOf(promoted ? promoted.image : config.image.kind === "build" ? config.image.registry : "");
    const host = new DockerHost("host", { config, registryAddress });
    const registry = config.localRegistry ? new LocalRegistry("local-registry", { names, port: config.localRegistry.port, provider: host.provider }) : undefined;

    let newImage: pulumi.Input<string> | undefined = deploysNewImage ? promoted?.image : undefined;
    if (config.image.kind === "build") {
        // Only the release the app folder holds can be built: building another release's tag from
        // this tree would push different code under that release's name. When the folder holds the
        // live release (an unchanged deploy), the build is declared with its previous inputs, so
        // preview shows no change.
        const treeRelease = config.release === "auto" ? release : appFolderRelease(env, appPath, release);
        if (deploysNewImage && treeRelease !== release) {
            throw new Error(
                `release "${release}" is on neither colour, so it must be built, but ${config.image.appPath} holds release "${treeRelease}". ` +
                    `Check out ${release} there, or set release to auto.`,
            );
        }
        if (treeRelease === release) {
            const builder = host.ensureBuilder();
            const image = new MedusaImage("image", {
                source: config.image,
                release,
                builderName: builder.name,
                registryAuth: config.registryAuth,
                projectDir: env.projectDir,
                provider: host.buildProvider(),
                dependsOn: [builder.resource, ...(registry ? [registry.container] : [])],
            });
            if (deploysNewImage) newImage = image.ref;
        }
    }

    const deployment = new BlueGreen("shop", {
        config,
        plan,
        names,
        host,
        newImage,
        newImageSource: promoted ? `${promoted.fromStack} (${promoted.release})` : "built",
    });

    return {
        live: deployment.live,
        blue: deployment.deployed.blue,
        green: deployment.deployed.green,
        rollbackRelease: deployment.live.apply(() => plan.rollbackRelease),
        url: config.edge.publicUrl,
    };
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
