// Continuous keep-alive load through the edge: N workers, each a loop of GET and POST requests on
// a shared keep-alive agent, some of them slow. Every request is recorded (start, end, which colour
// served it, failure) so tests can assert zero failures and when the serving colour changed. The
// colour comes from the body (the test backends name themselves): the public edge must not say it,
// so a response carrying the edge's colour header counts as a failure.
import * as http from "node:http";
import { COLOUR_HEADER } from "../../lib/haproxyConfig";

export interface RequestRecord {
    /** performance.now() when the request was issued. */
    startedAt: number;
    endedAt: number;
    method: "GET" | "POST";
    /** Colour the backend named in its body; undefined when the request failed. */
    colour?: string;
    /** Why it failed; undefined for a success. */
    error?: string;
}

export interface LoadOptions {
    /** Base URL of the edge, e.g. http://127.0.0.1:18480 */
    baseUrl: string;
    /** Concurrent keep-alive clients. @default 8 */
    workers?: number;
    /** Share of requests the backend answers after 200-500 ms. @default 0.1 */
    slowShare?: number;
    /** Share of POST requests (with a JSON body). @default 0.5 */
    postShare?: number;
    /** Pause of each worker between requests, to bound CPU use on a shared machine. @default 0 */
    pauseMs?: number;
}

const POST_BODY = JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ variant: `v_${i}`, quantity: i + 1 })) });

export class LoadClient {
    readonly records: RequestRecord[] = [];
    private running = false;
    private workers: Promise<void>[] = [];
    private readonly agent: http.Agent;
    private readonly options: Required<LoadOptions>;

    constructor(options: LoadOptions) {
        this.options = { workers: 8, slowShare: 0.1, postShare: 0.5, pauseMs: 0, ...options };
        this.agent = new http.Agent({ keepAlive: true, maxSockets: this.options.workers });
    }

    start(): void {
        if (this.running) return;
        this.running = true;
        for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
    }

    /** Stops issuing requests and waits for those in flight. */
    async stop(): Promise<void> {
        this.running = false;
        await Promise.all(this.workers);
        this.workers = [];
        this.agent.destroy();
    }

    get failures(): RequestRecord[] {
        return this.records.filter((r) => r.error !== undefined);
    }

    private async work(): Promise<void> {
        while (this.running) {
            this.records.push(await this.oneRequest());
            if (this.options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.pauseMs));
        }
    }

    private oneRequest(): Promise<RequestRecord> {
        const method = Math.random() < this.options.postShare ? "POST" : "GET";
        const delay = Math.random() < this.options.slowShare ? 200 + Math.floor(Math.random() * 300) : 0;
        const url = new URL(method === "POST" ? "/store/carts" : "/store/products", this.options.baseUrl);
        if (delay > 0) url.searchParams.set("delay", String(delay));
        const startedAt = performance.now();
        return new Promise((resolve) => {
            const done = (colour: string | undefined, error: string | undefined): void =>
                resolve({ startedAt, endedAt: performance.now(), method, colour, error });
            const request = http.request(
                url,
                {
                    method,
                    agent: this.agent,
                    headers: method === "POST" ? { "content-type": "application/json", "content-length": Buffer.byteLength(POST_BODY) } : {},
                },
                (response) => {
                    const chunks: Buffer[] = [];
                    response.on("data", (chunk: Buffer) => chunks.push(chunk));
                    response.on("error", (error) => done(undefined, `response: ${error.message}`));
                    response.on("end", () => {
                        if (response.statusCode !== 200) return done(undefined, `HTTP ${response.statusCode}`);
                        const leaked = response.headers[COLOUR_HEADER.toLowerCase()];
                        if (leaked !== undefined) return done(undefined, `the public edge sent ${COLOUR_HEADER}: ${String(leaked)}`);
                        try {
                            const body = JSON.parse(Buffer.concat(chunks).toString()) as { colour?: unknown; receivedBytes: number };
                            if (typeof body.colour !== "string") return done(undefined, "no colour in the body");
                            if (method === "POST" && body.receivedBytes !== Buffer.byteLength(POST_BODY)) {
                                return done(undefined, `POST body truncated: ${body.receivedBytes} bytes arrived`);
                            }
                            done(body.colour, undefined);
                        } catch (error) {
                            done(undefined, `bad body: ${(error as Error).message}`);
                        }
                    });
                },
            );
            request.on("error", (error: NodeJS.ErrnoException) => done(undefined, error.code ?? error.message));
            request.end(method === "POST" ? POST_BODY : undefined);
        });
    }
}

/**
 * Milliseconds from `from` until every request started later (up to `until`) was served by
 * `colour`: the start of the last request in that window that another colour served, minus `from`
 * (0 when none). Failed requests count as not served by `colour`.
 */
export function millisUntilOnlyColour(records: RequestRecord[], colour: string, from: number, until: number): number {
    let lastOther = from;
    for (const r of records) {
        if (r.startedAt >= from && r.startedAt < until && r.colour !== colour && r.startedAt > lastOther) lastOther = r.startedAt;
    }
    return lastOther - from;
}

/**
 * When, relative to `from`, requests started in [from, until) went to `colour` only. The change
 * happened after `lastOtherMs` (last request another colour answered, 0 if none) and by
 * `firstOnlyTargetMs` (first request after that one, answered by `colour` like all later ones); the
 * gap between them is the client's resolution (request spacing, or a stall of the client process).
 * NaN when no request started in the window after the last other one.
 */
export function routingChangeWindow(
    records: RequestRecord[],
    colour: string,
    from: number,
    until: number,
): { lastOtherMs: number; firstOnlyTargetMs: number } {
    const lastOtherMs = millisUntilOnlyColour(records, colour, from, until);
    let first = Infinity;
    for (const r of records) {
        if (r.startedAt < until && r.startedAt >= from + lastOtherMs && r.colour === colour && r.startedAt < first) first = r.startedAt;
    }
    return { lastOtherMs, firstOnlyTargetMs: first === Infinity ? NaN : first - from };
}

/** Records started in [from, until) that another colour served or that failed. */
export function requestsNotServedBy(records: RequestRecord[], colour: string, from: number, until: number): RequestRecord[] {
    return records.filter((r) => r.startedAt >= from && r.startedAt < until && r.colour !== colour);
}

/** `count` sequential GETs on fresh connections; returns the colour each body names (or an error text). */
export async function probeColours(baseUrl: string, count: number, path = "/store/products"): Promise<string[]> {
    const colours: string[] = [];
    for (let i = 0; i < count; i++) {
        colours.push(
            await new Promise<string>((resolve) => {
                const request = http.get(new URL(path, baseUrl), { agent: false }, (response) => {
                    const chunks: Buffer[] = [];
                    response.on("data", (chunk: Buffer) => chunks.push(chunk));
                    response.on("end", () => {
                        let colour: unknown;
                        try {
                            colour = (JSON.parse(Buffer.concat(chunks).toString()) as { colour?: unknown }).colour;
                        } catch {
                            colour = undefined;
                        }
                        const leaked = response.headers[COLOUR_HEADER.toLowerCase()] !== undefined;
                        resolve(response.statusCode === 200 && typeof colour === "string" && !leaked ? colour : `HTTP ${response.statusCode} ${String(colour)}${leaked ? ` with ${COLOUR_HEADER}` : ""}`);
                    });
                });
                request.on("error", (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
            }),
        );
    }
    return colours;
}
