// What the operator tools (tools/database.ts, status.ts, logs.ts) share: a stack's settings and
// outputs read through the pinned Pulumi CLI (secrets decrypted as `pulumi up` does), and commands
// run on the stack's docker host, directly for host `local`, over ssh with the stack's own key and
// pinned host key otherwise (never ~/.ssh or an agent).
import { spawn } from "node:child_process";
import * as os from "node:os";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { hostScript, HostScriptName } from "../components/hostScripts";
import { writeSshIdentity } from "../components/sshIdentity";
import { PROJECT_NAME } from "../lib/configSchema";
import { DeployConfig, parseDeployConfig, RawConfig } from "../lib/deployConfig";
import { renderHostInvocation } from "../lib/hostInvocation";
import { HostNames } from "../lib/hostNames";
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
    const host = config.host;
    let child;
    if (host.kind === "local") {
        child = spawn("sh", ["-c", commandLine], { stdio: ["pipe", "pipe", "inherit"] });
    } else {
        const files = sshFiles(os.homedir(), config.stack);
        writeSshIdentity(files, host.privateKey, knownHostsLine(host));
        child = spawn("ssh", [...dockerSshOptions(files), "-p", String(host.port), `${host.user}@${host.hostname}`, commandLine], { stdio: ["pipe", "pipe", "inherit"] });
    }
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
        // A followed log runs for hours: shown, not kept.
        if (!options.discard) stdout += chunk.toString();
        if (!options.quiet) process.stdout.write(chunk);
    });
    // A command that needs no stdin may exit before reading it: that EPIPE is not a failure.
    child.stdin.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code !== "EPIPE") throw error;
    });
    child.stdin.end(stdin ?? "");
    return new Promise((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => resolve({ status: code ?? 1, stdout }));
    });
}

/** The command line that runs host/<name>.sh there, through sudo when privileged and the stack says so. */
export function script(config: DeployConfig, name: HostScriptName, env: Record<string, string>, privileged: boolean): string {
    return renderHostInvocation({ script: hostScript(name), name, env, sudo: privileged && config.sudo });
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
