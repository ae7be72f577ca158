// Real HTTP servers standing in for a colour's Medusa server behind the edge: they answer GET and
// POST with their colour in the body, delay a response when asked (`?delay=<ms>`), answer /health,
// and can be told to fail their health check, to break every other path while /health stays 200
// (answering 500, or not answering at all), or be stopped like a process that died. They note when
// HAProxy last checked them, so a test can kill one right after a check passed.
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * healthy; failing-health: /health answers 503; broken-app: everything but /health answers 500;
 * hanging-app: everything but /health is answered only after 30 s.
 */
export type BackendMode = "healthy" | "failing-health" | "broken-app" | "hanging-app";

export interface BackendReply {
    colour: string;
    method: string;
    path: string;
    receivedBytes: number;
}

export class ColourBackend {
    mode: BackendMode = "healthy";
    /**
     * The hashed admin assets this colour's release has (paths under /app/assets/), answered with
     * `<colour>:<path>` as JavaScript. Any other path there gets the admin page (200 text/html), as
     * Medusa answers a file it does not have. Undefined: every path is served as JSON.
     */
    assets?: Set<string>;
    requestsServed = 0;
    /** performance.now() when the last /health answer went out. */
    lastHealthCheckAt = 0;
    private healthWaiters: (() => void)[] = [];
    private server?: http.Server;
    private readonly sockets = new Set<import("node:net").Socket>();

    constructor(readonly colour: string, readonly host: string) {}

    /** Listens on a free port of `host` (e.g. 127.0.0.2). */
    async start(port = 0): Promise<void> {
        const server = http.createServer((request, response) => this.handle(request, response));
        server.on("connection", (socket) => {
            this.sockets.add(socket);
            socket.on("close", () => this.sockets.delete(socket));
        });
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, this.host, () => resolve());
        });
        this.server = server;
    }

    get port(): number {
        if (!this.server) throw new Error(`${this.colour} backend is not running`);
        return (this.server.address() as AddressInfo).port;
    }

    /** `host:port`, as the edge config wants it. */
    get address(): string {
        return `${this.host}:${this.port}`;
    }

    get running(): boolean {
        return this.server !== undefined;
    }

    /** Resolves right after the next /health answer has been sent (HAProxy's check passed, if healthy). */
    nextHealthCheck(timeoutMs = 5000): Promise<void> {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${this.colour}: no health check within ${timeoutMs} ms`)), timeoutMs);
            this.healthWaiters.push(() => {
                clearTimeout(timer);
                resolve();
            });
        });
    }

    /** Stops listening and cuts every open connection, like a container that is gone. */
    async stop(): Promise<void> {
        const server = this.server;
        if (!server) return;
        this.server = undefined;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of this.sockets) socket.destroy();
        await closed;
    }

    private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
        const url = new URL(request.url ?? "/", "http://backend");
        let receivedBytes = 0;
        request.on("data", (chunk: Buffer) => {
            receivedBytes += chunk.length;
        });
        request.on("end", () => {
            if (url.pathname === "/health") {
                const healthy = this.mode !== "failing-health";
                response.writeHead(healthy ? 200 : 503, { "content-type": "text/plain" });
                response.end(healthy ? "ok" : "unhealthy", () => {
                    this.lastHealthCheckAt = performance.now();
                    const waiters = this.healthWaiters;
                    this.healthWaiters = [];
                    for (const wake of waiters) wake();
                });
                return;
            }
            if (this.assets && url.pathname.startsWith("/app/assets/")) {
                const has = this.assets.has(url.pathname);
                response.writeHead(200, { "content-type": has ? "application/javascript" : "text/html" });
                response.end(has ? `${this.colour}:${url.pathname}` : `<!doctype html><title>${this.colour} admin</title>`);
                return;
            }
            if (this.mode === "broken-app") {
                response.writeHead(500, { "content-type": "text/plain" });
                response.end("broken");
                return;
            }
            const delay = this.mode === "hanging-app" ? 30_000 : Math.min(Number(url.searchParams.get("delay") ?? 0) || 0, 10_000);
            const reply: BackendReply = {
                colour: this.colour,
                method: request.method ?? "",
                path: url.pathname,
                receivedBytes,
            };
            const send = (): void => {
                this.requestsServed += 1;
                response.writeHead(200, { "content-type": "application/json" });
                response.end(JSON.stringify(reply));
            };
            // unref: a hanging answer must not keep the test process alive once the server is stopped.
            if (delay > 0) setTimeout(send, delay).unref();
            else send();
        });
    }
}

/** Blue on 127.0.0.2 and green on 127.0.0.3, each on a free port. */
export async function startColourBackends(): Promise<{ blue: ColourBackend; green: ColourBackend }> {
    const blue = new ColourBackend("blue", "127.0.0.2");
    const green = new ColourBackend("green", "127.0.0.3");
    await blue.start();
    await green.start();
    return { blue, green };
}
