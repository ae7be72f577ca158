// Secret values for tests that need a stack to be valid: strong enough for the secret rules of
// lib/deployConfig.ts (a non-dev stack refuses short, placeholder or low-variety secrets) and shaped
// like the real thing (an OpenSSH private key, a postgres:// URL). Deterministic, so a test failure
// repeats, and each carries "s3cret" so a test can look for it in plain text.
import { createHash } from "node:crypto";

const hexOf = (seed: string, length: number) => createHash("sha256").update(seed).digest("hex").repeat(2).slice(0, length);

function sshString(value: string | Buffer): Buffer {
    const body = Buffer.isBuffer(value) ? value : Buffer.from(value);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    return Buffer.concat([length, body]);
}

/** An unencrypted OpenSSH private key as `ssh-keygen -N ""` writes it (the key material is filler). */
export function fakeOpenSshPrivateKey(seed = "medusa-deploy"): string {
    const filler = Buffer.from(hexOf(seed, 64), "hex");
    const blob = Buffer.concat([
        Buffer.from("openssh-key-v1\0"),
        sshString("none"),
        sshString("none"),
        sshString(""),
        Buffer.from([0, 0, 0, 1]),
        sshString(Buffer.concat([sshString("ssh-ed25519"), sshString(filler)])),
        sshString(Buffer.concat([filler, filler, Buffer.from("s3cret")])),
    ]);
    const lines = blob.toString("base64").match(/.{1,70}/g) ?? [];
    return ["-----BEGIN OPENSSH PRIVATE KEY-----", ...lines, "-----END OPENSSH PRIVATE KEY-----", ""].join("\n");
}

/** A value the secret rules accept for `key` on any stack. */
export function strongSecret(key: string): string {
    switch (key) {
        case "sshPrivateKey":
            return fakeOpenSshPrivateKey(key);
        case "databaseUrl":
            return `postgres://medusa:s3cret${hexOf(key, 32)}@db.internal:5432/medusa`;
        case "redisUrl":
            return `redis://:s3cret${hexOf(key, 32)}@cache.internal:6379`;
        default:
            return `s3cret-${key}-${hexOf(key, 40)}`;
    }
}

/** An ed25519 public host key line (`ssh-ed25519 <base64>`) as a .pub file holds it; the key material is filler. */
export function fakeHostKey(seed = "host"): string {
    const blob = Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.from(hexOf(seed, 64), "hex"))]);
    return `ssh-ed25519 ${blob.toString("base64")}`;
}

/** A value for a plain setting a stack file lists under `# required settings:`. */
export function requiredSettingValue(key: string): string {
    if (key === "sshHostKey") return fakeHostKey();
    // Digest-pinned references; the digests are filler (nothing pulls them in the unit tests).
    const pinned: Record<string, string> = { edgeImage: "haproxy:2.8", postgresImage: "postgres:16", redisImage: "redis:7" };
    if (pinned[key]) return `${pinned[key]}@sha256:${hexOf(key, 64)}`;
    throw new Error(`no fixture value for the required setting ${key}`);
}
