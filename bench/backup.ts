// Backup and restore time of the shop's database: host/backup-database.sh and
// host/restore-database.sh, exactly as a deploy and `npm run restore` run them, against a real
// Postgres 15 (Debian's, in the local image) on a private dockerd in a network namespace of its own.
// Two databases side by side: a small shop's (a few thousand orders, about what a new shop has) and
// generated order data of about TARGET_MB (customers, orders with addresses and JSON metadata, line
// items, their indexes). Writes bench/results/backup.md.
//
//   npx ts-node --transpile-only bench/backup.ts [TARGET_MB, default 1024]
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureLocalPostgresImage } from "../tests/support/localServiceImages";
import { NetnsDockerd } from "../tests/support/netnsDockerd";
import { PostgresContainer } from "../tests/support/postgresContainer";
import { unmountUnder } from "../tests/support/privateDockerd";
import { runShellScript } from "../tests/support/runShellScript";
import { sandboxRuntimeSettings } from "../tests/support/sandboxRuntime";

const PROJECT = path.resolve(__dirname, "..");
const WORK = path.join(PROJECT, ".test-work/bench-backup");
const RESULTS = path.join(PROJECT, "bench/results/backup.md");
const TARGET_MB = Number(process.argv[2] ?? 1024);
const IMAGE = "medusa-deploy/postgres:15-local";
const NETWORK = "bench-net";
const PASSWORD = `bench-${randomBytes(12).toString("hex")}`;

const SCHEMA = `
CREATE TABLE customer (id bigserial PRIMARY KEY, email text NOT NULL, first_name text, last_name text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE "order" (id bigserial PRIMARY KEY, display_id integer NOT NULL, customer_id bigint NOT NULL REFERENCES customer, email text NOT NULL,
    currency_code text NOT NULL, status text NOT NULL, total numeric(12,2) NOT NULL, shipping_address text, metadata jsonb, created_at timestamptz NOT NULL);
CREATE TABLE order_line_item (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES "order", title text NOT NULL, variant_sku text,
    quantity integer NOT NULL, unit_price numeric(12,2) NOT NULL, metadata jsonb);
CREATE INDEX order_customer_idx ON "order" (customer_id);
CREATE INDEX order_created_idx ON "order" (created_at);
CREATE INDEX line_item_order_idx ON order_line_item (order_id);`;

/** `orders` more orders (three line items each) and a customer per ten orders, in one statement batch. */
function batch(orders: number): string {
    return `
INSERT INTO customer (email, first_name, last_name)
    SELECT 'customer' || g || '-' || md5(random()::text) || '@example.com', 'First' || g, 'Last' || md5(g::text) FROM generate_series(1, ${Math.ceil(orders / 10)}) g;
INSERT INTO "order" (display_id, customer_id, email, currency_code, status, total, shipping_address, metadata, created_at)
    SELECT g, (SELECT max(id) FROM customer) - (g % ${Math.ceil(orders / 10)}), 'o' || g || '@example.com', (ARRAY['eur','usd','gbp'])[1 + g % 3],
           (ARRAY['pending','completed','canceled','requires_action'])[1 + g % 4], round((random() * 500)::numeric, 2),
           g || ' Long Street, Apartment ' || (g % 300) || ', ' || md5(g::text) || ' City, 1' || lpad((g % 10000)::text, 4, '0'),
           jsonb_build_object('source', 'web', 'campaign', md5(random()::text), 'gift', g % 9 = 0), now() - (g % 1000) * interval '1 hour'
    FROM generate_series(1, ${orders}) g;
INSERT INTO order_line_item (order_id, title, variant_sku, quantity, unit_price, metadata)
    SELECT o.id, 'Product ' || md5((o.id * 3 + n)::text), 'SKU-' || (o.id % 5000) || '-' || n, 1 + (o.id + n) % 4, round((random() * 120)::numeric, 2),
           jsonb_build_object('size', (ARRAY['S','M','L','XL'])[1 + n], 'note', md5(random()::text))
    FROM (SELECT id FROM "order" ORDER BY id DESC LIMIT ${orders}) o, generate_series(1, 3) n;`;
}

interface Measure {
    label: string;
    orders: number;
    databaseMb: number;
    dumpMb: number;
    backupS: number;
    restoreS: number;
}

async function main(): Promise<void> {
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(path.join(WORK, "tmp"), { recursive: true, mode: 0o700 });
    const ns = new NetnsDockerd("medusa-bench-bk", path.join(WORK, "dockerd"), { ...sandboxRuntimeSettings() });
    await ns.stop();
    await ns.start();
    const measures: Measure[] = [];
    try {
        const dockerd = ns.dockerd;
        ensureLocalPostgresImage(dockerd, IMAGE);
        dockerd.docker(["network", "create", NETWORK]);
        for (const [label, targetMb, step] of [["small shop", 0, 5000], [`~${TARGET_MB} MB of orders`, TARGET_MB, 200000]] as const) {
            const server = `bench-pg-${measures.length}`;
            const db = new PostgresContainer(dockerd, { name: server, image: IMAGE, network: NETWORK, alias: server });
            await db.create(PASSWORD);
            db.psql(SCHEMA);
            let orders = 0;
            let sizeMb = 0;
            const generating = Date.now();
            do {
                db.psql(batch(step));
                orders += step;
                sizeMb = Number(db.psql("SELECT pg_database_size(current_database()) / 1048576.0")) || 0;
                if (targetMb > 0) console.log(`  ${label}: ${orders} orders, ${sizeMb.toFixed(0)} MB (${((Date.now() - generating) / 1000).toFixed(0)} s)`);
            } while (sizeMb < targetMb);
            db.psql("VACUUM ANALYZE");
            sizeMb = Number(db.psql("SELECT pg_database_size(current_database()) / 1048576.0"));
            const backupDir = path.join(WORK, `backups-${measures.length}`);
            const env = {
                PATH: process.env.PATH,
                DOCKER_HOST: dockerd.host,
                TMPDIR: path.join(WORK, "tmp"),
                BACKUP_DIR: backupDir,
                PG_CLIENT_IMAGE: IMAGE,
                PG_NETWORK: NETWORK,
                PGHOST: server,
                PGUSER: "medusa",
                PGDATABASE: "medusa",
            };
            const name = "bench-deploy-x-20261202T000000Z.dump";
            let started = Date.now();
            const backup = await runShellScript(path.join(PROJECT, "host/backup-database.sh"), { env: { ...env, BACKUP_NAME: name }, input: `${PASSWORD}\n`, timeoutMs: 3600000 });
            const backupS = (Date.now() - started) / 1000;
            if (backup.status !== 0) throw new Error(`backup failed: ${backup.stderr}`);
            const before = db.psql(`SELECT count(*) || ' ' || sum(total) FROM "order"`);
            db.psql(`DELETE FROM order_line_item WHERE order_id % 2 = 0; DELETE FROM "order" WHERE id % 2 = 0; ALTER TABLE "order" DROP COLUMN metadata`);
            started = Date.now();
            const restore = await runShellScript(path.join(PROJECT, "host/restore-database.sh"), { env: { ...env, BACKUP_NAME: name }, input: `${PASSWORD}\n`, timeoutMs: 3600000 });
            const restoreS = (Date.now() - started) / 1000;
            if (restore.status !== 0) throw new Error(`restore failed: ${restore.stderr}`);
            const after = db.psql(`SELECT count(*) || ' ' || sum(total) FROM "order"`);
            if (after !== before) throw new Error(`the restore did not bring the orders back: ${before} before, ${after} after`);
            const dumpMb = fs.statSync(path.join(backupDir, name)).size / 1048576;
            measures.push({ label, orders, databaseMb: sizeMb, dumpMb, backupS, restoreS });
            console.log(`${label}: database ${sizeMb.toFixed(0)} MB, dump ${dumpMb.toFixed(1)} MB, backup ${backupS.toFixed(1)} s, restore ${restoreS.toFixed(1)} s`);
            dockerd.docker(["rm", "-f", server]);
            dockerd.docker(["volume", "rm", db.volume]);
            fs.rmSync(backupDir, { recursive: true, force: true });
        }
    } finally {
        await ns.stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    }
    writeResults(measures);
}

function writeResults(measures: Measure[]): void {
    const cpu = os.cpus()[0]?.model ?? "unknown";
    const rows = measures.map((m) => `| ${m.label} | ${m.orders} | ${m.databaseMb.toFixed(0)} MB | ${m.dumpMb.toFixed(1)} MB | ${m.backupS.toFixed(1)} | ${m.restoreS.toFixed(1)} |`);
    const text = `# Database backup and restore

Measured ${new Date().toISOString()} by \`npx ts-node --transpile-only bench/backup.ts ${TARGET_MB}\` on ${os.cpus().length} × ${cpu},
${(os.totalmem() / 2 ** 30).toFixed(1)} GiB: host/backup-database.sh and host/restore-database.sh as a deploy and \`npm run restore\`
run them (pg_dump --format=custom, then the dump read back in full; pg_restore --clean in one transaction), against
Debian's PostgreSQL 15 in a container of a private dockerd. Between backup and restore a destructive change (half the
orders and line items deleted, a column dropped); the restore brought the order count and sum back exactly.

| database | orders | size on disk | dump | backup (s) | restore (s) |
|---|---:|---:|---:|---:|---:|
${rows.join("\n")}

Backup time is what a deploy adds before each new release's migration (the \`backup\` phase of the
rehearsal's per-phase timings); a kept colour or a rollback takes none. The daily backup takes the
same time once a day, in its own container, while the shop serves.
`;
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, text);
    console.log(`wrote ${RESULTS}`);
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
