// command:remote:Command's run over the system OpenSSH client. The private key goes to a 0600 file
// in a private temporary folder that is removed afterwards; a pinned hostKey becomes a one-line
// known_hosts with strict checking (no hostKey: any host key is accepted, as in the real
// provider); `environment` and the previous output are sent with ssh's SetEnv (the server must
// AcceptEnv them, as with the real provider's setenv requests). A LocalCommand marker tells a
// failed connection (retried like the real provider's dial) from a command that failed.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseHostKey } from "./inputs";
import { Outputs, previousOutputEnv, RunContext } from "./local";
import { Logging, runProcess, trimOutput } from "./run";
import { goQuote, Props, reveal } from "./values";

interface Connection {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    hostKey?: string;
    dialErrorLimit: number;
    perDialTimeout: number;
}

const PINNED_ALIAS = "pulumi-command-pinned-host";

/** ssh_config quoting for one SetEnv value: double quotes, with \ and " escaped. */
const quoteSetEnv = (value: string) => `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

export function sshArguments(connection: Connection, files: { key: string; knownHosts: string; marker: string }, env: Record<string, string>, command: string): string[] {
    const option = (text: string) => ["-o", text];
    const args = ["-F", "/dev/null", "-T", "-e", "none", "-p", String(connection.port), "-l", connection.user, "-i", files.key];
    args.push(
        ...option("IdentitiesOnly=yes"),
        ...option("IdentityAgent=none"),
        ...option("BatchMode=yes"),
        ...option("PasswordAuthentication=no"),
        ...option("KbdInteractiveAuthentication=no"),
        ...option("ConnectionAttempts=1"),
        ...option("LogLevel=ERROR"),
        ...option("GlobalKnownHostsFile=/dev/null"),
        ...option("CheckHostIP=no"),
        ...option("PermitLocalCommand=yes"),
        ...option(`LocalCommand=touch '${files.marker.replace(/%/g, "%%")}'`),
    );
    if (connection.perDialTimeout > 0) args.push(...option(`ConnectTimeout=${connection.perDialTimeout}`));
    const pinned = connection.hostKey ? parseHostKey(connection.hostKey) : undefined;
    if (pinned) {
        args.push(
            ...option("StrictHostKeyChecking=yes"),
            ...option(`UserKnownHostsFile=${files.knownHosts}`),
            ...option(`HostKeyAlias=${PINNED_ALIAS}`),
            // An RSA key signs with SHA-2 on today's servers; the key's type alone names SHA-1.
            ...option(`HostKeyAlgorithms=${pinned.type === "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : pinned.type}`),
        );
    } else {
        args.push(...option("StrictHostKeyChecking=no"), ...option("UserKnownHostsFile=/dev/null"));
    }
    const names = Object.keys(env);
    if (names.length > 0) args.push(...option(`SetEnv=${names.map((name) => `${name}=${quoteSetEnv(env[name])}`).join(" ")}`));
    args.push("--", connection.host, command);
    return args;
}

/** Host key failures are not retried: the same server sends the same key. */
const hostKeyFailure = (text: string) => /Host key verification failed|no matching host key type|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(text);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runRemote(command: string, inputs: Props, previous: Outputs | undefined, context: RunContext): Promise<Outputs> {
    const plain = reveal(inputs) as Props;
    const connection = plain.connection as Connection;
    const env = { ...((plain.environment as Record<string, string> | undefined) ?? {}), ...previousOutputEnv(inputs, previous) };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-command-standin-"));
    try {
        fs.chmodSync(dir, 0o700);
        const files = { key: path.join(dir, "id"), knownHosts: path.join(dir, "known_hosts"), marker: path.join(dir, "connected") };
        fs.writeFileSync(files.key, connection.privateKey.endsWith("\n") ? connection.privateKey : `${connection.privateKey}\n`, { mode: 0o600, flag: "wx" });
        const pinned = connection.hostKey ? parseHostKey(connection.hostKey) : undefined;
        if (pinned) fs.writeFileSync(files.knownHosts, `${PINNED_ALIAS} ${pinned.type} ${pinned.key}\n`, { mode: 0o600 });
        const args = sshArguments(connection, files, env, command);
        const limit = connection.dialErrorLimit;
        let delay = 100;
        for (let dials = 1; ; dials++) {
            fs.rmSync(files.marker, { force: true });
            const connected = () => fs.existsSync(files.marker);
            const result = await runProcess("ssh", args, {
                env: process.env,
                stdin: typeof plain.stdin === "string" ? plain.stdin : undefined,
                logging: plain.logging as Logging | undefined,
                logLine: context.logLine,
                mayLog: connected,
            });
            if (result.startError) throw new Error(`could not run the ssh client (install openssh-client): ${result.startError.message}`);
            if (connected()) {
                if (result.code !== 0) {
                    const status = result.signal ? `Process exited with signal ${result.signal}` : `Process exited with status ${result.code}`;
                    throw new Error(context.redact(`${status}: running ${goQuote(command)}:\n${result.combined}`));
                }
                return { stdout: trimOutput(result.stdout), stderr: trimOutput(result.stderr) };
            }
            const target = `ssh ${connection.user}@${connection.host}:${connection.port}`;
            if (hostKeyFailure(result.stderr)) {
                const sent = /(SHA256:[A-Za-z0-9+/=]+)/.exec(result.stderr)?.[1];
                const why = sent ? `the server's host key ${sent} is not connection.hostKey` : "the server offers no host key of connection.hostKey's type";
                throw new Error(context.redact(`${target}: Host key verification failed: ${why}; nothing was run`));
            }
            const reason = `${target}: ${(result.stderr.trim() || `ssh exited with status ${result.code}`).replace(/\s*\n\s*/g, "; ")}`;
            if (limit > -1 && dials > limit) throw new Error(context.redact(`after ${dials - 1} failed attempts: ${reason}`));
            context.logLine(`Dial ${dials}/${limit === -1 ? "inf" : limit} failed: retrying`);
            await sleep(Math.min(delay, 5000));
            delay *= 1.5;
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
