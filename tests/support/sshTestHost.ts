// A real ssh host for tests: a network namespace of the test's own holding a private dockerd
// (netnsDockerd.ts) and Debian's sshd, reached from this machine over a veth pair with a /30 of its
// own. The namespace has no other way out. Logins are as `deploy` (no sudo; its only extra group
// may use this daemon's socket and no other) with a client key made at each start; the host key is
// made at each start too, so a client must pin it (knownHostsLine()). sshd gives every session
// DOCKER_HOST of the namespaced daemon (SetEnv), which is what Docker's ssh transport needs: it runs
// `docker system dial-stdio` on the far side. socat relays join the namespace's loopback and this
// machine's loopback in either direction.
//
// The `deploy` user and its group stay on the machine after stop() (harmless: no password, no sudo,
// and its group reaches only daemons that an SshTestHost started).
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { NetnsDockerd } from "./netnsDockerd";
import { sleep, unmountUnder } from "./privateDockerd";
import { sandboxRuntimeSettings } from "./sandboxRuntime";

export const DEPLOY_USER = "deploy";
/** The namespaced daemon's socket group (daemon.json "group"); `deploy` is its only member. */
export const DEPLOY_DOCKER_GROUP = "medusa-ssh-docker";
const DEPLOY_HOME = "/home/deploy";
/** sshd re-executes itself per connection and insists on an absolute path for that. */
const SSHD = "/usr/sbin/sshd";
/** Groups that would give `deploy` more than this one daemon. */
const PRIVILEGED_GROUPS = ["root", "sudo", "admin", "wheel", "docker"];
/** socat's wait for the other direction after one side closed (its default 0.5 s cuts slow half-closed replies). */
const RELAY_HALF_CLOSE_SECONDS = "60";

const repo = path.resolve(__dirname, "../..");
let instancesInProcess = 0;

export interface SshTestHostOptions {
    /** Folder for keys, configs, logs and the daemon's data; emptied at start, removed at stop. */
    workDir?: string;
    /** More daemon.json settings for the namespaced dockerd, e.g. { "insecure-registries": [...] }. */
    daemonJson?: Record<string, unknown>;
    /** More sshd_config lines, e.g. "AllowTcpForwarding no". */
    sshdOptions?: string[];
}

/** What a client needs on disk, as written by writeClientFiles(). */
export interface SshClientFiles {
    identityFile: string;
    knownHostsFile: string;
    /** An ssh_config with every option below for this host, for `ssh -F` (Docker's transport runs plain `ssh`). */
    configFile: string;
    /** `-i … -o …` options that make ssh use only these files and never ask. */
    sshOptions: string[];
}

interface Relay {
    child: ChildProcess;
    output: () => string;
}

export class SshTestHost {
    readonly netns: string;
    readonly workDir: string;
    readonly port = 22;
    readonly user = DEPLOY_USER;
    /** Milliseconds of the last start() and stop(). */
    readonly timings: { startMs?: number; stopMs?: number } = {};
    /** This machine's end of the veth pair. */
    readonly rootVeth: string;
    private readonly nsVeth: string;
    private readonly daemonJson: Record<string, unknown>;
    private readonly sshdOptions: string[];
    private subnet?: { rootAddress: string; address: string };
    private ns?: NetnsDockerd;
    private sshd?: ChildProcess;
    private relays: Relay[] = [];
    private keys?: { privateKey: string; publicKey: string; hostPublicKey: string };

    constructor(options: SshTestHostOptions = {}) {
        instancesInProcess += 1;
        const id = `${process.pid}-${instancesInProcess}`;
        this.netns = `medusa-ssh-${id}`;
        // Interface names have at most 15 characters.
        this.rootVeth = `mh${process.pid}_${instancesInProcess}`;
        this.nsVeth = `mn${process.pid}_${instancesInProcess}`;
        this.workDir = path.resolve(options.workDir ?? path.join(repo, ".test-work/ssh-host", id));
        this.daemonJson = options.daemonJson ?? {};
        this.sshdOptions = options.sshdOptions ?? [];
    }

    /** The namespace side of the veth: where sshd listens. */
    get address(): string {
        return this.started().subnet.address;
    }

    /** This machine's side of the veth. */
    get rootAddress(): string {
        return this.started().subnet.rootAddress;
    }

    get dockerd(): NetnsDockerd {
        return this.started().ns;
    }

    /** The client's private key (OpenSSH format) that authorized_keys accepts. */
    get privateKey(): string {
        return this.started().keys.privateKey;
    }

    /** The client's public key line. */
    get publicKey(): string {
        return this.started().keys.publicKey;
    }

    /** `ssh-ed25519 AAAA…` of this start's host key, without a comment. */
    get hostPublicKey(): string {
        return this.started().keys.hostPublicKey;
    }

    /** The file sshd reads the accepted keys from (as `deploy`); tests may rewrite it. */
    get authorizedKeysFile(): string {
        return path.join(this.workDir, "authorized_keys");
    }

    get sshdLogFile(): string {
        return path.join(this.workDir, "sshd.log");
    }

    knownHostsLine(): string {
        const host = this.port === 22 ? this.address : `[${this.address}]:${this.port}`;
        return `${host} ${this.hostPublicKey}`;
    }

    /** The docker CLI against the namespaced daemon, as root over its socket (not over ssh). */
    docker(args: string[], options: { input?: string; timeoutMs?: number } = {}): string {
        return this.dockerd.dockerd.docker(args, options);
    }

    async start(): Promise<void> {
        const started = Date.now();
        try {
            await this.startSteps();
        } catch (error) {
            await this.stop().catch(() => undefined);
            throw error;
        }
        this.timings.startMs = Date.now() - started;
    }

    private async startSteps(): Promise<void> {
        await this.stop();
        // `deploy` reads authorized_keys and dials the socket in here, so the folders made here must be
        // searchable whatever the umask.
        const firstMade = fs.mkdirSync(this.workDir, { recursive: true });
        for (let dir = this.workDir; firstMade !== undefined; dir = path.dirname(dir)) {
            fs.chmodSync(dir, 0o755);
            if (dir === firstMade || dir === path.dirname(dir)) break;
        }
        ensureDeployUser();
        this.keys = this.makeKeys();
        fs.writeFileSync(this.authorizedKeysFile, `${this.keys.publicKey}\n`, { mode: 0o644 });
        this.subnet = pickSubnet();

        this.ns = new NetnsDockerd(this.netns, this.dockerdRoot(), {
            ...sandboxRuntimeSettings(),
            ...this.daemonJson,
            group: DEPLOY_DOCKER_GROUP,
        });
        await this.ns.start();
        this.checkDeployReaches();

        execFileSync("ip", ["link", "add", this.rootVeth, "type", "veth", "peer", "name", this.nsVeth, "netns", this.netns]);
        execFileSync("ip", ["addr", "add", `${this.subnet.rootAddress}/30`, "dev", this.rootVeth]);
        execFileSync("ip", ["link", "set", this.rootVeth, "up"]);
        this.ns.exec("ip", ["addr", "add", `${this.subnet.address}/30`, "dev", this.nsVeth]);
        this.ns.exec("ip", ["link", "set", this.nsVeth, "up"]);

        await this.startSshd();
    }

    /**
     * The daemon's folder, kept short: containerd puts its sockets under the exec-root inside it,
     * and a unix socket path has at most 108 bytes (containerd refuses more than 104).
     */
    private dockerdRoot(): string {
        const root = path.join(this.workDir, "d");
        const longest = path.join(root, "exec/containerd/containerd-debug.sock");
        if (longest.length > 100) {
            throw new Error(`workDir ${this.workDir} is too long: containerd's socket ${longest} would exceed the unix socket path limit; pass a shorter workDir`);
        }
        return root;
    }

    private makeKeys(): { privateKey: string; publicKey: string; hostPublicKey: string } {
        const hostKey = path.join(this.workDir, "ssh_host_ed25519_key");
        const clientKey = path.join(this.workDir, "client_ed25519");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${this.netns} host`, "-f", hostKey]);
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${this.netns} client`, "-f", clientKey]);
        const [type, key] = fs.readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/);
        return {
            privateKey: fs.readFileSync(clientKey, "utf8"),
            publicKey: fs.readFileSync(`${clientKey}.pub`, "utf8").trim(),
            hostPublicKey: `${type} ${key}`,
        };
    }

    /** Fails early with a clear message when a parent folder keeps `deploy` from the socket or authorized_keys. */
    private checkDeployReaches(): void {
        const socket = this.dockerd.dockerd.socket;
        try {
            execFileSync("setpriv", ["--reuid", DEPLOY_USER, "--regid", DEPLOY_USER, "--init-groups",
                "/usr/bin/test", "-r", this.authorizedKeysFile, "-a", "-w", socket], { stdio: "ignore" });
        } catch {
            const modes = execFileSync("namei", ["-l", socket], { encoding: "utf8" });
            throw new Error(`user ${DEPLOY_USER} cannot read ${this.authorizedKeysFile} or write ${socket}; ` +
                `choose a workDir every user can search:\n${modes}`);
        }
    }

    private sshdConfig(): string {
        const lines = [
            "# Written by tests/support/sshTestHost.ts; nothing from /etc/ssh is included.",
            `ListenAddress ${this.address}:${this.port}`,
            `HostKey ${path.join(this.workDir, "ssh_host_ed25519_key")}`,
            `PidFile ${path.join(this.workDir, "sshd.pid")}`,
            `AuthorizedKeysFile ${this.authorizedKeysFile}`,
            // The work folder may sit in a checkout owned by another user, which StrictModes rejects;
            // authorized_keys is root's 0644 file in root's 0755 folder, so nobody else can change it.
            "StrictModes no",
            // Debian's PAM stack (pam_loginuid) fails in containers; without PAM sshd only needs an unlocked account.
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PermitRootLogin no",
            `AllowUsers ${DEPLOY_USER}`,
            "PermitUserEnvironment no",
            // No AcceptEnv: a session's environment is sshd's plus this, never the client's.
            `SetEnv DOCKER_HOST=${this.dockerd.dockerd.host}`,
            // Clients open one connection per docker command and may open many at once.
            "MaxStartups 100:30:200",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ];
        // OpenSSH 9.8 and later delay sources whose connections fail (the wrong-host-key cases do).
        if (sshdHasPerSourcePenalties()) lines.push("PerSourcePenalties no");
        return [...lines, ...this.sshdOptions].join("\n") + "\n";
    }

    private async startSshd(timeoutMs = 15000): Promise<void> {
        const config = path.join(this.workDir, "sshd_config");
        fs.writeFileSync(config, this.sshdConfig(), { mode: 0o644 });
        // sshd's privilege separation chroots to /run/sshd; Debian's init script makes it, nothing does here.
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
        execFileSync(SSHD, ["-t", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });

        const log = fs.openSync(this.sshdLogFile, "a");
        const child = spawn("nsenter", [`--net=${this.ns!.netnsPath}`, SSHD, "-D", "-e", "-f", config], {
            stdio: ["ignore", log, log],
            detached: true,
        });
        fs.closeSync(log);
        child.unref();
        this.sshd = child;
        let exited: string | undefined;
        child.on("exit", (code, signal) => (exited = signal ?? `status ${code}`));
        child.on("error", (error) => (exited = error.message));

        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            if (exited !== undefined) throw new Error(`sshd exited (${exited}):\n${this.sshdLog()}`);
            const banner = await readBanner(this.address, this.port, 1000).catch(() => "");
            if (banner.startsWith("SSH-2.0-")) return;
            await sleep(50);
        }
        throw new Error(`sshd did not answer on ${this.address}:${this.port} within ${timeoutMs} ms:\n${this.sshdLog()}`);
    }

    sshdLog(lines = 40): string {
        try {
            return fs.readFileSync(this.sshdLogFile, "utf8").split("\n").slice(-lines).join("\n");
        } catch {
            return "(no sshd log)";
        }
    }

    /**
     * Listens on 127.0.0.1:<a port the kernel picks> on this machine and carries each connection to
     * 127.0.0.1:nsPort inside the namespace (e.g. an edge published on the namespace's loopback).
     * The listener forks per connection and the child enters the namespace to dial, so keep-alive
     * connections stay one TCP stream end to end and parallel connections do not wait on each other.
     */
    async exposeOnRootLoopback(nsPort: number): Promise<number> {
        const dial = ["nsenter", `--net=${this.dockerd.netnsPath}`, ...relayDialer(nsPort)];
        return this.startRelay("socat", [...relayListener(0), `EXEC:${dial.map(socatEscape).join(" ")}`]);
    }

    /**
     * Inside the namespace, 127.0.0.1:nsPort carries each connection to 127.0.0.1:rootPort on this
     * machine (e.g. a registry the namespaced dockerd pulls from as localhost:<port>/…; dockerd treats
     * localhost registries as plain-HTTP ones without configuration).
     */
    async reachRootLoopback(rootPort: number, nsPort = rootPort): Promise<void> {
        // This process's own namespace is "the root namespace" the test's servers listen in.
        const dial = ["nsenter", `--net=/proc/${process.pid}/ns/net`, ...relayDialer(rootPort)];
        await this.startRelay("nsenter", [`--net=${this.dockerd.netnsPath}`, "socat", ...relayListener(nsPort), `EXEC:${dial.map(socatEscape).join(" ")}`]);
    }

    /** Starts a socat listener (its own process group) and resolves with the port it listens on. */
    private startRelay(command: string, args: string[], timeoutMs = 10000): Promise<number> {
        const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
        child.unref();
        (child.stderr as net.Socket | null)?.unref();
        let output = "";
        const relay: Relay = { child, output: () => output };
        this.relays.push(relay);
        return new Promise((resolve, reject) => {
            let port: number | undefined;
            const timer = setTimeout(() => reject(new Error(`socat did not listen within ${timeoutMs} ms: ${output}`)), timeoutMs);
            // Keep draining: socat logs every connection at -d -d, and a full pipe would stall it.
            child.stderr?.on("data", (chunk: Buffer) => {
                output = (output + chunk.toString()).slice(-8000);
                const listening = /listening on AF=2 127\.0\.0\.1:(\d+)/.exec(output);
                if (port === undefined && listening) {
                    port = Number(listening[1]);
                    clearTimeout(timer);
                    resolve(port);
                }
            });
            child.on("exit", (code, signal) => {
                clearTimeout(timer);
                if (port === undefined) reject(new Error(`socat exited (${signal ?? `status ${code}`}): ${output}`));
            });
            child.on("error", (error) => {
                clearTimeout(timer);
                reject(error);
            });
        });
    }

    /**
     * Ends the relays and sshd (whole process groups, so forked per-connection children too), stops
     * the daemon, deletes the namespace and the veth and removes the work folder. Safe after a failed
     * or partial start and when called twice.
     */
    async stop(): Promise<void> {
        const started = Date.now();
        const errors: string[] = [];
        const attempt = async (what: string, step: () => Promise<void> | void) => {
            try {
                await step();
            } catch (error) {
                errors.push(`${what}: ${(error as Error).message}`);
            }
        };
        for (const relay of this.relays) await attempt("socat relay", () => endProcessGroup(relay.child));
        this.relays = [];
        if (this.sshd) await attempt("sshd", () => endProcessGroup(this.sshd!));
        this.sshd = undefined;
        // Deleting the namespace also deletes both ends of the veth; a leftover root end goes here.
        if (this.ns) await attempt("namespaced dockerd", () => this.ns!.stop());
        else if (fs.existsSync(`/run/netns/${this.netns}`)) await attempt("namespace", () => new NetnsDockerd(this.netns, this.dockerdRoot()).stop());
        if (linkExists(this.rootVeth)) await attempt("veth", () => deleteLinkIfPresent(this.rootVeth));
        await attempt("work folder", () => {
            if (!fs.existsSync(this.workDir)) return;
            unmountUnder(this.workDir);
            fs.rmSync(this.workDir, { recursive: true, force: true });
        });
        this.ns = undefined;
        this.subnet = undefined;
        this.keys = undefined;
        this.timings.stopMs = Date.now() - started;
        if (errors.length > 0) throw new Error(`SshTestHost ${this.netns} did not stop cleanly:\n${errors.join("\n")}`);
    }

    /**
     * Writes the client key (0600), a known_hosts file pinning this start's host key and an
     * ssh_config for this host into `dir`. Nothing is read from ~/.ssh or an agent with these.
     */
    writeClientFiles(dir: string): SshClientFiles {
        fs.mkdirSync(dir, { recursive: true });
        const identityFile = path.join(dir, "id_ed25519");
        const knownHostsFile = path.join(dir, "known_hosts");
        const configFile = path.join(dir, "ssh_config");
        fs.writeFileSync(identityFile, this.privateKey, { mode: 0o600 });
        fs.chmodSync(identityFile, 0o600);
        fs.writeFileSync(knownHostsFile, `${this.knownHostsLine()}\n`);
        const options: Array<[string, string]> = [
            ["IdentitiesOnly", "yes"],
            ["IdentityAgent", "none"],
            ["UserKnownHostsFile", knownHostsFile],
            ["GlobalKnownHostsFile", "/dev/null"],
            ["StrictHostKeyChecking", "yes"],
            ["BatchMode", "yes"],
        ];
        fs.writeFileSync(configFile, [
            `Host ${this.address}`,
            `  User ${this.user}`,
            `  Port ${this.port}`,
            `  IdentityFile ${identityFile}`,
            ...options.map(([name, value]) => `  ${name} ${value}`),
            "",
        ].join("\n"));
        return {
            identityFile,
            knownHostsFile,
            configFile,
            sshOptions: ["-i", identityFile, ...options.flatMap(([name, value]) => ["-o", `${name}=${value}`])],
        };
    }

    private started(): { subnet: { rootAddress: string; address: string }; ns: NetnsDockerd; keys: { privateKey: string; publicKey: string; hostPublicKey: string } } {
        if (!this.subnet || !this.ns || !this.keys) throw new Error(`SshTestHost ${this.netns} is not started`);
        return { subnet: this.subnet, ns: this.ns, keys: this.keys };
    }
}

/** socat options shared by both relay directions: many queued connects, no Nagle delays, slow half-closes kept. */
function relayListener(port: number): string[] {
    return ["-d", "-d", "-t", RELAY_HALF_CLOSE_SECONDS, `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=256,nodelay`];
}

function relayDialer(port: number): string[] {
    return ["socat", "-t", RELAY_HALF_CLOSE_SECONDS, "STDIO", `TCP:127.0.0.1:${port},nodelay`];
}

/** socat would read `:` and `,` in EXEC's command as its own separators; the words here hold no other special characters. */
function socatEscape(word: string): string {
    return word.replace(/[:,]/g, (c) => `\\${c}`);
}

/**
 * Creates `deploy` and its docker group if absent (several processes may race: losing is fine).
 * Its password stays unusable but not locked: without PAM, sshd refuses locked ("!") accounts even for keys.
 */
function ensureDeployUser(): void {
    execFileSync("groupadd", ["--force", "--system", DEPLOY_DOCKER_GROUP]);
    if (!userExists(DEPLOY_USER)) {
        try {
            execFileSync("useradd", ["--create-home", "--home-dir", DEPLOY_HOME, "--shell", "/bin/sh", "--password", "*",
                "--groups", DEPLOY_DOCKER_GROUP, "--comment", "medusa-deploy ssh test host", DEPLOY_USER], { stdio: "pipe" });
        } catch (error) {
            if (!userExists(DEPLOY_USER)) throw error;
        }
    }
    const groups = execFileSync("id", ["-nG", DEPLOY_USER], { encoding: "utf8" }).trim().split(/\s+/);
    if (!groups.includes(DEPLOY_DOCKER_GROUP)) execFileSync("usermod", ["--append", "--groups", DEPLOY_DOCKER_GROUP, DEPLOY_USER]);
    const privileged = groups.filter((group) => PRIVILEGED_GROUPS.includes(group));
    if (privileged.length > 0) throw new Error(`user ${DEPLOY_USER} already exists with groups ${privileged.join(", ")}; the ssh test host needs it unprivileged`);
    const shadow = execFileSync("getent", ["shadow", DEPLOY_USER], { encoding: "utf8" }).split(":")[1] ?? "";
    if (shadow.startsWith("!")) execFileSync("usermod", ["--password", "*", DEPLOY_USER]);
}

function userExists(user: string): boolean {
    try {
        execFileSync("id", ["-u", user], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

/**
 * The kernel removes the root end of the veth on its own once the namespace is gone, but not at
 * once: a link seen a moment ago may have vanished by the time `ip link del` runs. Gone is the goal.
 */
function deleteLinkIfPresent(name: string): void {
    try {
        execFileSync("ip", ["link", "del", name], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (error) {
        if (linkExists(name)) throw error;
    }
}

function linkExists(name: string): boolean {
    try {
        execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

/**
 * A /30 out of 10.201.0.0/16 whose root-side address no interface here holds, starting from one
 * derived from the pid so that parallel processes start apart.
 */
function pickSubnet(): { rootAddress: string; address: string } {
    const used = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" });
    for (let step = 0; step < 16384; step++) {
        const index = (process.pid * 7 + instancesInProcess + step) % 16384;
        const prefix = `10.201.${index >> 6}.`;
        const base = (index & 63) * 4;
        const rootAddress = `${prefix}${base + 1}`;
        if (!used.includes(` ${rootAddress}/`)) return { rootAddress, address: `${prefix}${base + 2}` };
    }
    throw new Error("no free /30 left in 10.201.0.0/16");
}

let penalties: boolean | undefined;
function sshdHasPerSourcePenalties(): boolean {
    if (penalties === undefined) {
        // `sshd -V` prints e.g. "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL …" on stderr.
        let version = "";
        try {
            version = execFileSync(SSHD, ["-V"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        } catch (error) {
            version = String((error as { stderr?: string }).stderr ?? "");
        }
        const match = /OpenSSH_(\d+)\.(\d+)/.exec(version);
        penalties = match !== null && (Number(match[1]) > 9 || (Number(match[1]) === 9 && Number(match[2]) >= 8));
    }
    return penalties;
}

/** The first line a server sends (sshd's version banner). */
function readBanner(host: string, port: number, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ host, port });
        let received = "";
        const timer = setTimeout(() => socket.destroy(new Error("no banner")), timeoutMs);
        socket.on("data", (chunk: Buffer) => {
            received += chunk.toString("latin1");
            if (received.includes("\n")) {
                clearTimeout(timer);
                socket.destroy();
                resolve(received.split("\n")[0].trim());
            }
        });
        socket.on("error", (error) => {
            clearTimeout(timer);
            reject(error);
        });
        socket.on("close", () => {
            clearTimeout(timer);
            reject(new Error("closed before a banner"));
        });
    });
}

/** SIGTERM to the child's process group, SIGKILL after a while; resolves when the leader is gone. */
async function endProcessGroup(child: ChildProcess, timeoutMs = 5000): Promise<void> {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const signal = (name: NodeJS.Signals) => {
        try {
            process.kill(-child.pid!, name);
        } catch {
            // the group is already empty
        }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), timeoutMs);
    await gone;
    clearTimeout(timer);
}
