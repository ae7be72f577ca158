// How the deploying machine reaches an ssh host with nothing but the stack's settings: the pinned
// host key (`sshHostKey`) and the private key (`sshPrivateKey`). Host scripts go through the command
// provider, which takes both directly (connection.hostKey, connection.privateKey). Docker's ssh
// transport runs the system `ssh` client, which reads keys and known hosts only from files: the
// program writes both into a folder of the stack's own on the deploying machine, and these ssh
// options make the client use those files and nothing else (no agent, no ~/.ssh, no prompt).
import * as path from "node:path";

const HOST_KEY_TYPES = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/**
 * `<type> <base64>` from what an operator pastes: a .pub file's line (comment dropped) or a
 * known_hosts / ssh-keyscan line (leading host names dropped). Undefined when it is not a host key.
 */
export function parseHostKey(text: string): { type: string; key: string } | undefined {
    const words = text.trim().split(/\s+/);
    const at = words.findIndex((w) => HOST_KEY_TYPES.includes(w));
    if (at < 0 || at > 1) return undefined;
    const key = words[at + 1];
    if (!key || !/^[A-Za-z0-9+/]+={0,2}$/.test(key)) return undefined;
    // The base64 blob starts with the key type again (RFC 4253 section 6.6): a pasted mismatch is caught.
    const blob = Buffer.from(key, "base64");
    const length = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
    if (length <= 0 || blob.length < 4 + length || blob.subarray(4, 4 + length).toString() !== words[at]) return undefined;
    return { type: words[at], key };
}

export const HOST_KEY_EXAMPLE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… (the host's /etc/ssh/ssh_host_ed25519_key.pub)";

export interface SshEndpoint {
    user: string;
    hostname: string;
    port: number;
    /** `<type> <base64>` (parseHostKey's result joined). */
    hostKey: string;
}

/** The known_hosts line pinning the host key (OpenSSH writes `[host]:port` for ports other than 22). */
export function knownHostsLine(endpoint: SshEndpoint): string {
    const name = endpoint.port === 22 ? endpoint.hostname : `[${endpoint.hostname}]:${endpoint.port}`;
    return `${name} ${endpoint.hostKey}\n`;
}

/** Files of the stack's ssh identity on the deploying machine: fixed names, so a key rotation changes no provider input. */
export function sshFiles(homeDir: string, stack: string): { dir: string; identity: string; knownHosts: string } {
    const dir = path.join(homeDir, ".medusa-deploy", "ssh", stack);
    return { dir, identity: path.join(dir, "id"), knownHosts: path.join(dir, "known_hosts") };
}

/** Options for Docker's ssh transport: this key only, this host key only, never a prompt. */
export function dockerSshOptions(files: { identity: string; knownHosts: string }): string[] {
    return [
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-i", files.identity,
        "-o", `UserKnownHostsFile=${files.knownHosts}`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
    ];
}
