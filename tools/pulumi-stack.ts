// Runs `pulumi preview|up|refresh|destroy` for one stack of a project through Pulumi's Automation
// API with the program inline. The engine is the real CLI and the real provider plugins; only the
// program's language host differs: the SDK's own in-process language server (what every inline
// Automation API program uses) instead of the pulumi-language-nodejs binary, which the Go module
// proxy here does not serve (README, "Offline and air-gapped machines"). Stack config still comes
// from Pulumi.<stack>.yaml in the project folder, state from PULUMI_BACKEND_URL.
//
//   ts-node --transpile-only tools/pulumi-stack.ts up --stack dev [--cwd DIR] [--expect-no-changes]
import * as path from "path";
import { EngineEvent, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { deployTimings, describeTimings, StepEvent } from "../lib/deployTimings";
import { parseStackCommand, pulumiCliRoot, StackCommand } from "../lib/stackCommand";

async function main(): Promise<void> {
    const command = parseStackCommand(process.argv.slice(2));
    const workDir = path.resolve(command.cwd);
    const pulumiCommand = await PulumiCommand.get({ root: pulumiCliRoot(process.env), skipVersionCheck: true });
    const programFile = path.join(workDir, command.program);
    const workspace = await LocalWorkspace.create({
        workDir,
        pulumiCommand,
        program: () => runProgramModule(programFile),
    });
    const stack = await Stack.createOrSelect(command.stack, workspace);
    await run(stack, command);
}

/**
 * Loads the program as Pulumi's Node.js runtime does: a module whose export is a function is called
 * and its result is the stack's outputs (`export = main`); otherwise its exports are the outputs.
 */
async function runProgramModule(file: string): Promise<Record<string, unknown>> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded: unknown = require(file);
    const entry = typeof loaded === "function" ? loaded : (loaded as { default?: unknown }).default;
    if (typeof entry === "function") return ((await (entry as () => unknown)()) ?? {}) as Record<string, unknown>;
    return { ...(loaded as Record<string, unknown>) };
}

async function run(stack: Stack, command: StackCommand): Promise<void> {
    const onOutput = (text: string) => process.stdout.write(text);
    const onError = (text: string) => process.stderr.write(text);
    const common = { onOutput, onError, color: "auto" as const };
    switch (command.action) {
        case "preview": {
            const result = await stack.preview({ ...common, diff: true, expectNoChanges: command.expectNoChanges });
            process.stdout.write(`\nchanges: ${JSON.stringify(result.changeSummary)}\n`);
            return;
        }
        case "up": {
            const steps: StepEvent[] = [];
            const printTimings = () => {
                const timings = deployTimings(steps);
                process.stdout.write(`\ntimings: ${describeTimings(timings)}\ntimings-json: ${JSON.stringify(timings)}\n`);
            };
            try {
                const result = await stack.up({ ...common, diff: command.diff, expectNoChanges: command.expectNoChanges, onEvent: (event) => recordStep(event, steps) });
                printTimings();
                process.stdout.write(`\nchanges: ${JSON.stringify(result.summary.resourceChanges ?? {})}\n`);
            } catch (error) {
                // A failed deploy's phases say where the time went before it failed.
                printTimings();
                throw error;
            }
            return;
        }
        case "refresh":
            await stack.refresh({ ...common });
            return;
        case "destroy":
            // Data volumes are protected: they stay, with the shop's data, for the next deploy.
            await stack.destroy({ ...common, excludeProtected: true });
            return;
    }
}

/** Step starts and ends as they arrive (the engine's own timestamps have whole-second resolution). */
function recordStep(event: EngineEvent, steps: StepEvent[]): void {
    const at = performance.now();
    const started = event.resourcePreEvent?.metadata;
    const ended = event.resOutputsEvent?.metadata;
    const failed = event.resOpFailedEvent?.metadata;
    if (started) steps.push({ urn: started.urn, type: started.type, op: started.op, kind: "start", at });
    if (ended) steps.push({ urn: ended.urn, type: ended.type, op: ended.op, kind: "end", at });
    if (failed) steps.push({ urn: failed.urn, type: failed.type, op: failed.op, kind: "failed", at });
}

main().catch((error: unknown) => {
    const text = error instanceof Error ? error.message : String(error);
    process.stderr.write(`\npulumi-stack: ${explainFailure(text)}\n`);
    process.exit(1);
});

// The engine's messages for a missing plugin do not say where ours come from.
function explainFailure(text: string): string {
    if (/no resource plugin|could not find plugin|plugin .* not found/i.test(text)) {
        return `${text.trim()}\nA provider plugin is missing from the project's Pulumi home: run \`npm run toolchain\` (sh tools/toolchain.sh); it builds and installs the pinned plugins, and says which ones cannot be built here.`;
    }
    return text.trim();
}
