// What the edge's public frontend lets through to the app and back to the client, on a real HAProxy:
// client-sent forwarding headers never reach the app, the colour header and /deploy-info are the
// operator frontend's only, per-client limits and the body timeout hold, and the default limits do
// not fail one request of the switch benchmark's load.
import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { COLOUR_HEADER, EdgeConfigInput, renderHaproxyConfig } from "../../lib/haproxyConfig";
import { freePort } from "../support/haproxyEdge";
import { LoadClient } from "../support/loadClient";
import { requireCommands } from "../support/realComponent";

interface Seen {
    path: string;
    headers: http.IncomingHttpHeaders;
}

/** An app that echoes what reached it, answers /health and /deploy-info, and claims a colour header. */
function startEchoApp(seen: Seen[]): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer((request, response) => {
        let receivedBytes = 0;
        request.on("data", (chunk: Buffer) => (receivedBytes += chunk.length));
        request.on("end", () => {
            if (request.url !== "/health") seen.push({ path: request.url ?? "", headers: request.headers });
            const delay = Number(new URL(request.url ?? "/", "http://app").searchParams.get("delay") ?? 0);
            setTimeout(() => {
                response.writeHead(200, { "content-type": "application/json", [COLOUR_HEADER]: "spoofed-by-app" });
                response.end(JSON.stringify({ colour: "blue", receivedBytes, path: request.url, headers: request.headers }));
            }, Math.min(delay || 0, 1000));
        });
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as net.AddressInfo).port })));
}

class Edge {
    readonly port: number;
    readonly operatorSocket: string;
    private child?: ChildProcess;
    private readonly log: string;

    constructor(
        private readonly dir: string,
        port: number,
        appPort: number,
        extra: Partial<EdgeConfigInput>,
    ) {
        this.port = port;
        this.operatorSocket = path.join(dir, "operator.sock");
        this.log = path.join(dir, "haproxy.log");
        const config = renderHaproxyConfig({
            bindAddress: "127.0.0.1",
            bindPort: port,
            servers: { blue: { address: `127.0.0.1:${appPort}` }, green: { address: `127.0.0.1:${appPort}` } },
            adminSocketPath: path.join(dir, "admin.sock"),
            operatorSocketPath: this.operatorSocket,
            stateFilePath: path.join(dir, "server-state"),
            ...extra,
        });
        fs.writeFileSync(path.join(dir, "haproxy.cfg"), config);
    }

    async start(): Promise<void> {
        const log = fs.openSync(this.log, "a");
        this.child = spawn("haproxy", ["-db", "-f", path.join(this.dir, "haproxy.cfg")], { stdio: ["ignore", log, log] });
        fs.closeSync(log);
        for (const deadline = Date.now() + 10_000; ; ) {
            const answer = await get({ port: this.port, path: "/store/ready" }).catch(() => undefined);
            if (answer?.status === 200) return;
            if (Date.now() > deadline) throw new Error(`the edge did not serve: ${fs.readFileSync(this.log, "utf8")}`);
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
    }

    stop(): void {
        this.child?.kill("SIGKILL");
    }
}

interface Answer {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
}

function get(options: http.RequestOptions): Promise<Answer> {
    return new Promise((resolve, reject) => {
        const request = http.request({ host: "127.0.0.1", agent: false, ...options }, (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => (body += chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
        });
        request.on("error", reject);
        request.end();
    });
}

describe("edge headers and limits (real HAProxy)", function () {
    this.timeout(60_000);
    let dir: string;
    let app: { server: http.Server; port: number };
    const seen: Seen[] = [];
    const edges: Edge[] = [];

    before(async function () {
        requireCommands(this, ["haproxy"], "install it with `apt-get install -y haproxy`");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-headers-"));
        app = await startEchoApp(seen);
    });
    after(() => {
        for (const edge of edges) edge.stop();
        app?.server.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    async function edge(name: string, extra: Partial<EdgeConfigInput> = {}): Promise<Edge> {
        const folder = path.join(dir, name);
        fs.mkdirSync(folder);
        const started = new Edge(folder, await freePort(), app.port, extra);
        edges.push(started);
        await started.start();
        return started;
    }

    /** What reached the app for one request through `port` with the given headers. */
    async function reachingApp(port: number, headers: Record<string, string>): Promise<http.IncomingHttpHeaders> {
        const marker = `/store/products?probe=${Math.random()}`;
        assert.equal((await get({ port, path: marker, headers })).status, 200);
        const request = seen.find((s) => s.path === marker);
        assert.ok(request, "the request reached the app");
        return request.headers;
    }

    const spoofed = {
        Forwarded: "for=6.6.6.6;proto=https;host=evil.example",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Real-IP": "6.6.6.6",
        "True-Client-IP": "6.6.6.6",
        Host: "shop.example.com",
    };

    it("replaces every forwarding header a client sends with the edge's own", async () => {
        const { port } = await edge("plain");
        const headers = await reachingApp(port, spoofed);
        assert.equal(headers["x-forwarded-for"], "127.0.0.1");
        assert.equal(headers["x-forwarded-proto"], "http");
        assert.equal(headers["x-forwarded-host"], "shop.example.com");
        for (const name of ["forwarded", "x-forwarded-port", "x-real-ip", "true-client-ip"]) assert.equal(headers[name], undefined, name);
    });

    it("keeps X-Forwarded-For/-Proto/-Host from a listed proxy, and still drops the rest", async () => {
        const { port } = await edge("proxied", { trustedProxies: ["127.0.0.1"] });
        const headers = await reachingApp(port, spoofed);
        assert.equal(headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
        assert.equal(headers["x-forwarded-proto"], "https");
        assert.equal(headers["x-forwarded-host"], "evil.example");
        for (const name of ["forwarded", "x-forwarded-port", "x-real-ip", "true-client-ip"]) assert.equal(headers[name], undefined, name);
    });

    it("never names the colour to the public, and does to the operator socket", async () => {
        const started = await edge("colour");
        const publicAnswer = await get({ port: started.port, path: "/store/products" });
        assert.equal(publicAnswer.headers[COLOUR_HEADER.toLowerCase()], undefined, "not even the app's own claim passes");
        const operatorAnswer = await get({ socketPath: started.operatorSocket, path: "/store/products" });
        assert.equal(operatorAnswer.status, 200);
        assert.match(String(operatorAnswer.headers[COLOUR_HEADER.toLowerCase()]), /^(blue|green)$/);
    });

    it("answers /deploy-info 404 to the public however it is spelled, and serves it on the operator socket", async () => {
        const started = await edge("deploy-info");
        const before = seen.length;
        for (const spelling of ["/deploy-info", "/Deploy-Info", "//deploy-info", "/deploy%2Dinfo", "/deploy-info/", "/deploy-info?x=1", "/deploy-info/extra"]) {
            assert.equal((await get({ port: started.port, path: spelling })).status, 404, spelling);
        }
        assert.equal(seen.length, before, "none of them reached the app");
        const operatorAnswer = await get({ socketPath: started.operatorSocket, path: "/deploy-info" });
        assert.equal(operatorAnswer.status, 200);
        assert.equal(seen.at(-1)?.path, "/deploy-info");
        assert.equal((await get({ port: started.port, path: "/deploy-informed" })).status, 200, "a longer path is the app's");
    });

    it("refuses a client's connections beyond the limit and its requests beyond the rate", async () => {
        const { port } = await edge("limits", { clientLimits: { connections: 3, requestsPer10s: 20 } });
        const sockets = await Promise.all([1, 2, 3].map(() => new Promise<net.Socket>((resolve) => {
            const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
        })));
        await new Promise((resolve) => setTimeout(resolve, 200));
        const fourth = await new Promise<string>((resolve) => {
            const socket = net.connect(port, "127.0.0.1", () => socket.write("GET /store/products HTTP/1.1\r\nHost: x\r\n\r\n"));
            let answer = "";
            socket.on("data", (chunk) => (answer += chunk.toString()));
            socket.on("close", () => resolve(answer === "" ? "closed without an answer" : answer.split("\r\n")[0]));
            socket.on("error", () => undefined);
        });
        assert.equal(fourth, "closed without an answer");
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 200));
        const statuses: number[] = [];
        for (let i = 0; i < 25; i++) statuses.push((await get({ port, path: "/store/products" })).status);
        // The readiness probes and the refused connection's request count too: some of the 20 are used.
        const served = statuses.indexOf(429);
        assert.ok(served >= 12 && served <= 20, `about 20 requests pass before the first 429: ${statuses.join(" ")}`);
        assert.deepEqual(statuses.slice(0, served), Array(served).fill(200));
        assert.deepEqual(statuses.slice(served), Array(25 - served).fill(429));
    });

    it("gives up on a request body that trickles in, before the app is involved", async () => {
        const { port } = await edge("slow-body", { timeouts: { httpRequest: "1s" } });
        const before = seen.length;
        const status = await new Promise<string>((resolve) => {
            const socket = net.connect(port, "127.0.0.1", () => {
                socket.write("POST /store/carts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":");
            });
            let answer = "";
            socket.on("data", (chunk) => (answer += chunk.toString()));
            socket.on("close", () => resolve(answer.split("\r\n")[0]));
            socket.on("error", () => undefined);
        });
        assert.match(status, /^HTTP\/1\.1 408/);
        assert.equal(seen.length, before, "the app never saw the request");
    });

    it("default limits: the switch benchmark's load (8 keep-alive clients, 10% slow) fails no request", async function () {
        this.timeout(60_000);
        const { port } = await edge("defaults");
        const load = new LoadClient({ baseUrl: `http://127.0.0.1:${port}`, workers: 8 });
        load.start();
        await new Promise((resolve) => setTimeout(resolve, 12_000));
        await load.stop();
        const failures = load.failures;
        console.log(`      default limits: ${load.records.length} requests over 12 s from one address, ${failures.length} failed`);
        assert.ok(load.records.length > 1000, `enough load to mean something: ${load.records.length}`);
        assert.deepEqual(failures.slice(0, 5).map((f) => f.error), []);
    });
});
