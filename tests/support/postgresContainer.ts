// A real Postgres server in a container of a test's own dockerd, run as components/baseServices.ts
// runs the stack's: the image from tests/support/localServiceImages.ts, a named data volume, on a
// Docker network under an alias. The test's own SQL goes in through `docker exec -i ... psql` over
// the container's local socket (trusted in that image), so it needs no password and none of the
// statements is ever a command-line argument.
//
// The password clients use over the network is set after initialisation (ALTER ROLE on stdin), not
// through POSTGRES_PASSWORD: that way it is in no container's configuration at all, and a test can
// look for it anywhere on the machine and know a hit is a leak.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { POSTGRES_SHM_SIZE_MB } from "../../lib/serviceRestarts";
import { PGDATA } from "./localServiceImages";
import { PrivateDockerd, sleep } from "./privateDockerd";

export interface PostgresContainerOptions {
    name: string;
    image: string;
    network: string;
    /** Name the server answers to on the network. */
    alias: string;
    user?: string;
    database?: string;
}

export class PostgresContainer {
    readonly name: string;
    readonly user: string;
    readonly database: string;
    readonly volume: string;

    constructor(private readonly dockerd: PrivateDockerd, private readonly options: PostgresContainerOptions) {
        this.name = options.name;
        this.user = options.user ?? "medusa";
        this.database = options.database ?? "medusa";
        this.volume = `${options.name}-data`;
    }

    /** Creates and starts the container on a fresh volume, waits until it accepts connections, then gives the role `password`. */
    async create(password: string): Promise<void> {
        const bootstrap = `bootstrap-${randomBytes(6).toString("hex")}`;
        this.dockerd.docker([
            "run", "-d", "--name", this.name,
            "-e", `POSTGRES_PASSWORD=${bootstrap}`, "-e", `POSTGRES_USER=${this.user}`, "-e", `POSTGRES_DB=${this.database}`,
            "-v", `${this.volume}:${PGDATA}`, "--shm-size", `${POSTGRES_SHM_SIZE_MB}m`,
            "--network", this.options.network, "--network-alias", this.options.alias,
            this.options.image,
        ]);
        await this.waitReady();
        this.setPassword(password);
    }

    /** ALTER ROLE through stdin, dollar-quoted so that any character but the quote tag is literal. */
    setPassword(password: string): void {
        const tag = `$pw${randomBytes(4).toString("hex")}$`;
        if (password.includes(tag)) throw new Error("the password contains the quote tag");
        this.psql(`ALTER ROLE "${this.user}" PASSWORD ${tag}${password}${tag}`);
    }

    /** Runs SQL (on stdin) as the owner through the local socket; returns psql's unaligned, tuples-only output. */
    psql(sql: string): string {
        const result = spawnSync("docker", ["exec", "-i", this.name, "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", this.user, "-d", this.database], {
            env: this.dockerd.env(),
            input: sql,
            encoding: "utf8",
            maxBuffer: 64 * 1024 * 1024,
            timeout: 600000,
        });
        if (result.status !== 0) throw new Error(`psql in ${this.name} failed (${result.status}): ${result.stderr}`);
        return result.stdout.trim();
    }

    async waitReady(timeoutMs = 60000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        while (Date.now() < deadline) {
            const probe = spawnSync("docker", ["exec", this.name, "pg_isready", "-U", this.user, "-d", this.database], { env: this.dockerd.env(), encoding: "utf8", timeout: 10000 });
            if (probe.status === 0) return;
            last = probe.stdout + probe.stderr;
            await sleep(200);
        }
        throw new Error(`${this.name} did not accept connections within ${timeoutMs} ms: ${last}\n${this.logs()}`);
    }

    stop(): void {
        this.dockerd.docker(["stop", "-t", "30", this.name]);
    }

    async start(): Promise<void> {
        this.dockerd.docker(["start", this.name]);
        await this.waitReady();
    }

    logs(): string {
        const result = spawnSync("docker", ["logs", "--tail", "40", this.name], { env: this.dockerd.env(), encoding: "utf8" });
        return result.stdout + result.stderr;
    }

    /**
     * What a restore must bring back, as one text: the tables of the public schema, then for each its
     * columns, indexes, row count and a checksum of every row in key order. Equal texts: the same
     * schema and the same rows.
     */
    snapshot(tables: string[]): string {
        const parts = [this.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")];
        for (const table of tables) {
            parts.push(
                this.psql(
                    `SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '-'), '; ' ORDER BY ordinal_position) ` +
                        `FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '${table}'`,
                ),
                this.psql(`SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public' AND tablename = '${table}'`),
                this.psql(`SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.id)), '-') FROM public.${table} t`),
            );
        }
        return parts.join("\n");
    }
}
