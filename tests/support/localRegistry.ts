// Debian's Docker registry (`docker-registry serve`, distribution 2.8) as a child process on loopback,
// with its storage in a folder of the test's own and manifest deletion enabled. It listens on port 0
// and reports the port the kernel chose in its log, so two suites never race for a "free" port.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

export interface LocalRegistryOptions {
    /** Folder for the config file, the log and the storage. Created if absent. */
    root: string;
}

/** The media types a registry may hold a manifest under; HEAD/DELETE must accept the pushed one. */
const MANIFEST_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
].join(", ");

export interface RegistryResponse {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
}

export class LocalRegistry {
    readonly root: string;
    readonly configFile: string;
    readonly storageDir: string;
    readonly logFile: string;
    private child?: ChildProcess;
    private listening?: string;

    constructor(options: LocalRegistryOptions) {
        this.root = path.resolve(options.root);
        this.configFile = path.join(this.root, "config.yml");
        this.storageDir = path.join(this.root, "storage");
        this.logFile = path.join(this.root, "registry.log");
    }

    /** host:port, as used in image references (127.0.0.1:<port>/name:tag). Only valid after start. */
    get address(): string {
        if (this.listening === undefined) throw new Error("the registry is not started");
        return this.listening;
    }

    async start(timeoutMs = 15000): Promise<void> {
        fs.mkdirSync(this.storageDir, { recursive: true });
        fs.writeFileSync(this.configFile, this.config());
        const log = fs.createWriteStream(this.logFile, { flags: "a" });
        const child = spawn("docker-registry", ["serve", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
        this.child = child;
        let output = "";
        let exited: string | undefined;
        const collect = (chunk: Buffer) => {
            log.write(chunk);
            output += chunk.toString();
            this.listening ??= /listening on (127\.0\.0\.1:\d+)/.exec(output)?.[1];
        };
        child.stdout?.on("data", collect);
        child.stderr?.on("data", collect);
        child.on("exit", (code, signal) => {
            exited = `exited with ${signal ?? `status ${code}`}`;
            log.end();
        });
        child.on("error", (error) => (exited = `could not be started: ${error.message}`));

        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            if (exited !== undefined) throw new Error(`docker-registry ${exited}:\n${output}`);
            if (this.listening !== undefined && (await this.answers())) return;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await this.stop();
        throw new Error(`docker-registry did not answer GET /v2/ within ${timeoutMs} ms:\n${output}`);
    }

    /** True when GET /v2/ answers 200 (the API version check every client makes first). */
    async answers(): Promise<boolean> {
        try {
            return (await this.request("GET", "/v2/")).status === 200;
        } catch {
            return false;
        }
    }

    /** The digest the registry serves for name:reference (a tag or a digest), or undefined on 404. */
    async manifestDigest(name: string, reference: string): Promise<string | undefined> {
        const response = await this.request("HEAD", `/v2/${name}/manifests/${reference}`, { Accept: MANIFEST_TYPES });
        if (response.status === 404) return undefined;
        const digest = response.headers["docker-content-digest"];
        if (response.status !== 200 || typeof digest !== "string") {
            throw new Error(`HEAD manifest ${name}:${reference} answered ${response.status} without a digest`);
        }
        return digest;
    }

    /** DELETE /v2/<name>/manifests/<digest>; the registry answers 202 Accepted when it deleted it. */
    async deleteManifest(name: string, digest: string): Promise<RegistryResponse> {
        return this.request("DELETE", `/v2/${name}/manifests/${digest}`, { Accept: MANIFEST_TYPES });
    }

    request(method: string, urlPath: string, headers: Record<string, string> = {}): Promise<RegistryResponse> {
        return new Promise((resolve, reject) => {
            const req = http.request(`http://${this.address}${urlPath}`, { method, headers, timeout: 5000 }, (res) => {
                let body = "";
                res.on("data", (chunk: Buffer) => (body += chunk.toString()));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
            });
            req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
            req.on("error", reject);
            req.end();
        });
    }

    tail(lines = 30): string {
        try {
            return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
        } catch {
            return "(no log)";
        }
    }

    async stop(timeoutMs = 10000): Promise<void> {
        const child = this.child;
        this.child = undefined;
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        await gone;
        clearTimeout(timer);
    }

    private config(): string {
        // Minimal on purpose: no auth, no cache, no TLS (dockerd trusts 127.0.0.0/8 registries over plain HTTP).
        return [
            "version: 0.1",
            "log:",
            "  level: info",
            "storage:",
            "  filesystem:",
            `    rootdirectory: ${JSON.stringify(this.storageDir)}`,
            "  delete:",
            "    enabled: true",
            "http:",
            "  addr: 127.0.0.1:0",
            "",
        ].join("\n");
    }
}
