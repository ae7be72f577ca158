// How long a service is down when a settings change replaces its container on the real engine:
// the docker plugin deletes the running container before it creates the new one. Measured with
// tests/fixtures/engine-containers (a busybox httpd standing in for the edge), polling its port
// every 20 ms while `pulumi up` replaces it. Writes bench/results/service-replace.md.
//
//   npx ts-node --transpile-only bench/serviceReplace.ts [runs]
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { freePort } from "../tests/support/haproxyEdge";
import { LocalRegistry } from "../tests/support/localRegistry";
import { PrivateDockerd, unmountUnder } from "../tests/support/privateDockerd";
import { sandboxRuntimeSettings } from "../tests/support/sandboxRuntime";
import { EngineStack, loadToolchain, PROJECT_DIR, runStack } from "../tests/support/toolchain";
import { HTTPD_APPLETS, importBusyboxImage } from "../tests/support/busyboxImage";

const WORK = path.join(PROJECT_DIR, ".test-work/bench-service-replace");
const RUNS = Number(process.argv[2] ?? 3);

function probe(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/health", timeout: 500 }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
        });
        req.on("error", () => resolve(false));
        req.on("timeout", () => req.destroy());
    });
}

async function main(): Promise<void> {
    const { toolchain, reason } = loadToolchain();
    if (!toolchain) throw new Error(reason);
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(WORK, { recursive: true });
    const dockerd = new PrivateDockerd({ root: path.join(WORK, "dockerd"), daemonJson: { ...sandboxRuntimeSettings() } });
    await dockerd.start(60000);
    const registry = new LocalRegistry({ root: path.join(WORK, "registry") });
    await registry.start();
    const gaps: number[] = [];
    try {
        const image = `${registry.address}/bench/busybox:1`;
        importBusyboxImage(dockerd, image, WORK, { applets: HTTPD_APPLETS, dirs: ["/tmp"], changes: ["ENV PATH=/bin"] });
        dockerd.docker(["push", image]);
        const port = await freePort();
        const stack = (variant: string): EngineStack => ({
            projectDir: path.join(PROJECT_DIR, "tests/fixtures/engine-containers"),
            stack: "replace",
            stateDir: path.join(WORK, "state"),
            env: { ENGINE_DOCKER_HOST: dockerd.host, ENGINE_IMAGE: image, ENGINE_PORT: String(port), ENGINE_HEALTH_PATH: "/health", ENGINE_WAIT_TIMEOUT: "60", ENGINE_VARIANT: variant },
        });
        const first = await runStack(toolchain, stack("0"), ["up"]);
        if (first.status !== 0) throw new Error(first.output);
        for (let run = 0; run < RUNS; run++) {
            // A changed environment is a container input the plugin cannot update: it replaces.
            const up = runStack(toolchain, stack(String(run + 1)), ["up"]);
            let downSince: number | undefined;
            let gap = 0;
            let done = false;
            void up.then(() => (done = true));
            while (!done || downSince !== undefined) {
                const ok = await probe(port);
                const now = Date.now();
                if (!ok && downSince === undefined) downSince = now;
                if (ok && downSince !== undefined) {
                    gap = now - downSince;
                    downSince = undefined;
                    if (done) break;
                }
                await new Promise((r) => setTimeout(r, 20));
                if (done && downSince === undefined) break;
            }
            const result = await up;
            if (result.status !== 0) throw new Error(result.output);
            gaps.push(gap);
            console.log(`replacement ${run + 1}: down ${gap} ms (up took ${(result.ms / 1000).toFixed(1)} s; ${/^changes: .*$/m.exec(result.output)?.[0] ?? "?"})`);
        }
    } finally {
        await registry.stop();
        await dockerd.stop(60000);
        unmountUnder(WORK);
    }
    const sorted = [...gaps].sort((a, b) => a - b);
    const lines = [
        "# Downtime when a settings change replaces a service container",
        "",
        `Measured ${new Date().toISOString().slice(0, 10)} by \`npx ts-node --transpile-only bench/serviceReplace.ts ${RUNS}\`: the real`,
        "engine and docker plugin (tools/toolchain.sh), a busybox httpd standing in for the edge on a port",
        "of 127.0.0.1, polled every 20 ms while `pulumi up` replaces its container (a changed environment",
        "variable; a changed health check, by contrast, is updated in place).",
        "The plugin deletes the running container before creating the new one, so the port answers",
        "nothing in between. This is why a deploy refuses such a change to the edge, Postgres or Redis",
        "unless MEDUSA_DEPLOY_ALLOW_RESTART names the service (lib/serviceRestarts.ts).",
        "",
        "| replacement | no answer (ms) |",
        "|---|---:|",
        ...gaps.map((g, i) => `| ${i + 1} | ${g} |`),
        "",
        `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms. A real edge or database adds its own start-up`,
        "(HAProxy listens at once; Postgres needs its recovery and health check: seconds).",
        "",
    ];
    fs.mkdirSync(path.join(PROJECT_DIR, "bench/results"), { recursive: true });
    fs.writeFileSync(path.join(PROJECT_DIR, "bench/results/service-replace.md"), lines.join("\n"));
    console.log(lines.join("\n"));
}

main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
});
