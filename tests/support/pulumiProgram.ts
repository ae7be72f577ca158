// Runs index.ts under pulumi.runtime.setMocks with a chosen stack config and chosen stack outputs
// (this stack's previous deploy, the promotion source's), and records every resource declared with
// its inputs and options. Host commands and containers are not run: the scripts are tested for real
// in tests/host; this checks the graph the program declares.
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { RawConfig } from "../../lib/deployConfig";
import { namespaced } from "./stackFiles";

export interface DeclaredResource {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
    resource?: pulumi.Resource;
}

export interface ProgramRun {
    resources: DeclaredResource[];
    outputs: Record<string, unknown>;
    /** Resources of a type. Inputs are as the engine receives them (secrets wrapped). */
    ofType(type: string): DeclaredResource[];
    /** The one resource of that name (and type, when two share a name). */
    named(name: string, type?: string): DeclaredResource;
}

export interface ProgramOptions {
    stack: string;
    config: RawConfig;
    /** Outputs of stacks read through StackReference, by full stack name. */
    stackOutputs?: Record<string, Record<string, unknown>>;
    /** What `release: auto` resolves to. */
    appRelease?: string;
    homeDir?: string;
    /** The user running pulumi. @default { uid: 1000, gid: 1000 } */
    user?: { uid: number; gid: number };
    /** MEDUSA_DEPLOY_ALLOW_RESTART of the run. @default unset */
    allowRestart?: string;
    /** MEDUSA_DEPLOY_SWITCH of the run (npm run switch). */
    switchNow?: string;
    /** Id of the machine running pulumi (its buildx store). @default "laptop-0001" */
    machine?: string;
    /** The organization the engine reports (a file backend's is "organization"). @default "organization" */
    organization?: string;
}

const fakeDigest = (seed: string) => `sha256:${Buffer.from(seed).toString("hex").padEnd(64, "0").slice(0, 64)}`;

function unwrapOutput<T>(value: unknown): Promise<T | undefined> {
    if (pulumi.Output.isInstance(value)) return new Promise((resolve) => (value as pulumi.Output<T>).apply((v) => resolve(v)));
    return Promise.resolve(value as T);
}

function targetColourOf(create: unknown): string {
    return /TARGET_COLOUR='(\w+)'/.exec(String(create))?.[1] ?? "unknown";
}

/** What install-edge-config.sh reports last: the EDGE_USER it was given, else the (non-root) user running it. */
function edgeUserReport(create: unknown): string {
    return `edge config: installed\nedge user: ${/EDGE_USER='(\d+:\d+)'/.exec(String(create))?.[1] ?? "1000:1000"}`;
}

/** A host script's stdout as the real script prints it, where the program reads it. */
function scriptStdout(name: string, create: unknown): string {
    if (name.endsWith("traffic-switch")) return `switching\nlive: ${targetColourOf(create)}`;
    if (name.endsWith("edge-config")) return edgeUserReport(create);
    if (name.endsWith("edge-assets")) return `assets: 0 kept on ${targetColourOf(create) === "blue" ? "green" : "blue"}`;
    // As the script reports it: root under sudo, otherwise a deploy user's ids.
    if (name.endsWith("preflight")) return `preflight: host scripts run as ${/\bsudo\b/.test(String(create)) ? "0:0" : "1000:1000"}\npreflight: ok`;
    if (name.endsWith("-backup-retention")) return "removed: x 1 bytes (beyond KEEP_DEPLOY)\nbackups: 3 kept, 12288 bytes in /backups";
    if (name.endsWith("-backup")) {
        const prefix = /BACKUP_NAME_PREFIX='([^']+)'/.exec(String(create))?.[1] ?? "unknown";
        return `backup: ${prefix}-20261202T101500Z.dump 4096 bytes in 1s`;
    }
    return "ok";
}

let sharedTestHome: string | undefined;

/** One home folder per test process, removed when it exits (not under /tmp, which hostStateDir refuses). */
function testHomeDir(): string {
    if (!sharedTestHome) {
        const dir = path.resolve(__dirname, "../../.test-work/unit-home", String(process.pid));
        fs.mkdirSync(dir, { recursive: true });
        process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
        sharedTestHome = dir;
    }
    return sharedTestHome;
}

export async function runProgram(options: ProgramOptions): Promise<ProgramRun> {
    const declared: DeclaredResource[] = [];
    const byUrnName = new Map<string, DeclaredResource>();

    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                const record = byUrnName.get(args.name);
                if (record) record.inputs = args.inputs;
                const state: Record<string, unknown> = { ...args.inputs };
                switch (args.type) {
                    case "pulumi:pulumi:StackReference":
                        return { id: args.inputs.name, state: { name: args.inputs.name, outputs: options.stackOutputs?.[args.inputs.name] ?? {}, secretOutputNames: [] } };
                    case "docker-build:index:Image": {
                        const digest = fakeDigest(String(args.inputs.tags?.[0]));
                        return { id: `${args.name}-id`, state: { ...state, digest, ref: `${args.inputs.tags?.[0]}@${digest}` } };
                    }
                    case "docker:index/remoteImage:RemoteImage":
                        return { id: `${args.name}-id`, state: { ...state, imageId: fakeDigest(String(args.inputs.name)) } };
                    case "command:local:Command":
                    case "command:remote:Command":
                        return { id: `${args.name}-id`, state: { ...state, stdout: scriptStdout(args.name, args.inputs.create), stderr: "" } };
                    default:
                        return { id: `${args.name}-id`, state };
                }
            },
            call: () => ({}),
        },
        "medusa-deploy",
        options.stack,
        false,
        options.organization ?? "organization",
    );
    const { config, secretKeys } = namespaced(options.config);
    pulumi.runtime.setAllConfig(config, secretKeys);

    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const main = require("../../index") as (env: unknown) => Promise<Record<string, unknown>>;
    const env = {
        // A real folder: an ssh stack writes its ssh identity files under the home folder.
        homeDir: options.homeDir ?? testHomeDir(),
        user: options.user ?? { uid: 1000, gid: 1000 },
        projectDir: process.cwd(),
        appRelease: () => options.appRelease ?? "release-1",
        machine: options.machine ?? "laptop-0001",
        allowRestart: options.allowRestart,
        switchNow: options.switchNow,
    };
    // Run as the language host does: inside a root stack resource, so a stack transformation sees
    // every resource's options as the SDK resolved them (protect, dependsOn, ignoreChanges…).
    const outputs: Record<string, unknown> = {};
    let failure: unknown;
    await pulumi.runtime.runInPulumiStack(async () => {
        pulumi.runtime.registerStackTransformation((args) => {
            const record: DeclaredResource = { type: args.type, name: args.name, inputs: args.props as Record<string, unknown>, opts: args.opts, resource: args.resource };
            declared.push(record);
            byUrnName.set(args.name, record);
            return undefined;
        });
        try {
            const raw = await main(env);
            for (const [key, value] of Object.entries(raw)) outputs[key] = await unwrapOutput(value);
        } catch (error) {
            failure = error;
        }
        return {};
    });
    if (failure !== undefined) throw failure;
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));

    return {
        resources: declared,
        outputs,
        ofType: (type) => declared.filter((r) => r.type === type),
        named(name, type) {
            const found = declared.filter((r) => r.name === name && (type === undefined || r.type === type));
            if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${declared.map((r) => r.name).join(", ")}`);
            return found[0];
        },
    };
}

/** Resolves an Input (plain, promise or Output) to its value. */
export function valueOf<T>(input: pulumi.Input<T> | undefined): Promise<T | undefined> {
    return unwrapOutput<T>(input);
}

/** Pulumi's marker of a secret value in serialized resource inputs. */
const SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d";

/** Whether a serialized input value (as a mock's newResource receives it) is a secret. */
export function isWrappedSecret(value: unknown): boolean {
    return typeof value === "object" && value !== null && SECRET_SIGNATURE in value;
}

/**
 * A host command's stdin split as the loader on its command line reads it (lib/hostInvocation.ts):
 * the script's lines first, then the script's own data. Unwraps a secret stdin.
 */
export function hostCommandStdin(resource: DeclaredResource): { script: string; data: string } {
    const create = String(resource.inputs.create);
    const count = /__mdn=(\d+) /.exec(create)?.[1];
    if (count === undefined) throw new Error(`${resource.name}: its command line has no stdin loader: ${create.slice(0, 200)}`);
    const raw = resource.inputs.stdin;
    const stdin = String(isWrappedSecret(raw) ? (raw as { value: unknown }).value : raw);
    const lines = stdin.split("\n");
    return { script: lines.slice(0, Number(count)).join("\n") + "\n", data: lines.slice(Number(count)).join("\n") };
}
