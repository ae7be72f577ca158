// What the operator tools (tools/database.ts, status.ts, logs.ts) share: a stack's settings and
// outputs read through the pinned Pulumi CLI (secrets decrypted as `pulumi up` does), and commands
// run on the stack's docker host, directly for host `local`, over ssh with the stack's own key and
// pinned host key otherwise (never ~/.ssh or an agent).
import { spawn, StdioOptions } from "node:child_process";
import * as os from "node:os";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { hostScript, HostScriptName } from "../components/hostScripts";
import { writeSshIdentity } from "../components/sshIdentity";
import { PROJECT_NAME } from "../lib/configSchema";
import { DeployConfig, parseDeployConfig, RawConfig } from "../lib/deployConfig";
import { renderHostInvocation } from "../lib/hostInvocation";
import { HostNames } from "../lib/hostNames";
import { shellQuote } from "../lib/shellQuote";
import { pulumiCliRoot } from "../lib/stackCommand";
import { dockerSshOptions, knownHostsLine, sshFiles } from "../lib/sshTransport";

export interface HostRun {
    status: number;
    stdout: string;
}

/**
 * Runs a command line on the stack's host (`sh -c` words from renderHostInvocation); stderr goes to
 * ours, stdout is collected (unless `discard`) and, unless `quiet`, shown as it comes.
 */
export function onHost(config: DeployConfig, commandLine: string, stdin?: string, options: { quiet?: boolean; discard?: boolean } = {}): Promise<HostRun> {
    const child = spawnOnHost(config, commandLine, ["pipe", "pipe", "inherit"], false);
    const [input, output] = [child.stdin, child.stdout];
    if (input === null || output === null) throw new Error("internal: a host command without pipes");
    let stdout = "";
    output.on("data", (chunk: Buffer) => {
        // A followed log runs for hours: shown, not kept.
        if (!options.discard) stdout += chunk.toString();
        if (!options.quiet) process.stdout.write(chunk);
    });
    // A command that needs no stdin may exit before reading it: that EPIPE is not a failure.
    input.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code !== "EPIPE") throw error;
    });
    input.end(stdin ?? "");
    return new Promise((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => resolve({ status: code ?? 1, stdout }));
    });
}

function spawnOnHost(config: DeployConfig, commandLine: string, stdio: StdioOptions, terminal: boolean) {
    const host = config.host;
    if (host.kind === "local") return spawn("sh", ["-c", commandLine], { stdio });
    const files = sshFiles(os.homedir(), config.stack);
    writeSshIdentity(files, host.privateKey, knownHostsLine(host));
    // -t: the remote command gets a terminal of its own, so prompts and Ctrl-C reach it.
    return spawn("ssh", [...dockerSshOptions(files), ...(terminal ? ["-t"] : []), "-p", String(host.port), `${host.user}@${host.hostname}`, commandLine], { stdio });
}

/**
 * Runs a command line on the stack's host with our own stdin, stdout and stderr (an interactive
 * one-off); `terminal` gives it a terminal over ssh. Resolves to its exit code.
 */
export function onHostAttached(config: DeployConfig, commandLine: string, terminal: boolean): Promise<number> {
    const child = spawnOnHost(config, commandLine, "inherit", terminal);
    return new Promise((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
    });
}

/** The command line that runs host/<name>.sh there, through sudo when privileged and the stack says so. */
export function script(config: DeployConfig, name: HostScriptName, env: Record<string, string>, privileged: boolean, args: string[] = []): string {
    return [renderHostInvocation({ script: hostScript(name), name, env, sudo: privileged && config.sudo }), ...args.map(shellQuote)].join(" ");
}

/** Where the edge control scripts (edge-maintenance.sh, edge-preview.sh) find the stack's edge on its host. */
export function edgeControlEnv(names: HostNames): Record<string, string> {
    return { EDGE_ADMIN_SOCKET: names.adminSocket, EDGE_DIR: names.edgeDir, EDGE_CONTROL_DIR: names.edgeControlDir, EDGE_DIR_IN_EDGE: names.edgeMountPoint };
}

export async function readStack(stackName: string, cwd: string): Promise<{ config: DeployConfig; outputs: Record<string, unknown> }> {
    const pulumiCommand = await PulumiCommand.get({ root: pulumiCliRoot(process.env), skipVersionCheck: true });
    const workspace = await LocalWorkspace.create({ workDir: cwd, pulumiCommand });
    const stack = await Stack.select(stackName, workspace);
    const raw: RawConfig = {};
    for (const [key, value] of Object.entries(await stack.getAllConfig())) {
        if (key.startsWith(`${PROJECT_NAME}:`)) raw[key.slice(PROJECT_NAME.length + 1)] = { value: value.value, secret: value.secret === true };
    }
    const config = parseDeployConfig(raw, { stack: stackName, homeDir: os.homedir(), projectDir: cwd });
    const outputs = Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    return { config, outputs };
}
