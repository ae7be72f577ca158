// Writes the stack's ssh identity for Docker's ssh transport on the machine running pulumi: the
// private key (the ssh client reads keys from files only) and the pinned host key as a known_hosts
// file. The folder is the user's own (0700), the key file 0600, as ssh demands of ~/.ssh; the key
// never reaches a provider input, the state or a log: only the file's path does.
import * as fs from "node:fs";
import { SecretValue } from "../lib/secretValue";

export function writeSshIdentity(files: { dir: string; identity: string; knownHosts: string }, privateKey: SecretValue, knownHosts: string): void {
    fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(files.dir, 0o700);
    const key = privateKey.reveal();
    // OpenSSH refuses a key file without its final line break.
    writeIfChanged(files.identity, key.endsWith("\n") ? key : `${key}\n`, 0o600);
    writeIfChanged(files.knownHosts, knownHosts, 0o600);
}

/** Replaces the file atomically when its content differs (two programs may run at once). */
function writeIfChanged(file: string, content: string, mode: number): void {
    try {
        if (fs.readFileSync(file, "utf8") === content) return fs.chmodSync(file, mode);
    } catch {
        // absent: written below
    }
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, content, { mode });
    fs.renameSync(temporary, file);
}
