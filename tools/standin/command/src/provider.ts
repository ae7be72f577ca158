// The resource lifecycle of the real pulumi-resource-command 1.2.1 (pulumi-go-provider's `infer`
// defaults plus the provider's own Create/Update/Delete), re-implemented for the Node SDK's provider
// server:
// - Check: types, unsupported inputs, the connection's defaults, the connection made secret.
// - Diff: old inputs (kept in the state) against new; a changed `triggers` replaces, any other
//   changed input updates. No delete-before-replace: the engine creates the replacement first.
// - Create: runs `create` (if any); a failure leaves no state. Update: runs `update`, else `create`,
//   with the previous output in the environment. Delete: runs `delete` (if any).
// - State: the inputs as given (secrets stay secret) plus stdout and stderr (not secret: the real
//   provider only carries secretness from an input to the output of the same name).
import * as crypto from "node:crypto";
import type * as provider from "@pulumi/pulumi/provider";
import { EngineLog } from "./engineLog";
import { checkInputs, inputNames, Kind, STANDIN } from "./inputs";
import { Outputs, runLocal, RunContext } from "./local";
import { runRemote } from "./remote";
import { killAll } from "./run";
import { deepEqual, isSecret, makeSecret, Props, redactor, reveal, secretStrings } from "./values";

export const VERSION = "1.2.1";

const kinds: Record<string, Kind> = { "command:local:Command": "local", "command:remote:Command": "remote" };

/** The resource type in a URN (urn:pulumi:stack::project::[parent$]type::name). */
function typeOf(urn: string): string {
    const qualified = urn.split("::")[2] ?? "";
    return qualified.split("$").pop() ?? "";
}

function kindOf(urn: string): Kind {
    const type = typeOf(urn);
    const kind = kinds[type];
    if (!kind) throw new Error(`${type || urn} is not implemented by ${STANDIN}; it implements command:local:Command and command:remote:Command only`);
    return kind;
}

const nameOf = (urn: string) => urn.split("::").pop() ?? "command";

function pickInputs(kind: Kind, state: Props): Props {
    const inputs: Props = {};
    for (const key of inputNames[kind]) if (state[key] !== undefined && state[key] !== null) inputs[key] = state[key];
    return inputs;
}

function previousOutputs(state: Props): Outputs {
    const text = (value: unknown) => (typeof reveal(value) === "string" ? (reveal(value) as string) : "");
    return { stdout: text(state.stdout), stderr: text(state.stderr) };
}

/**
 * The strings to keep out of logs and errors: those inside secret inputs. The connection is secret
 * as a whole (as in the real provider) but only its key is secret by nature: hiding its host and
 * user would blank out every "root" in a command's output.
 */
function secretsToHide(inputs: Props): string[] {
    const { connection, ...rest } = inputs;
    const fields = (isSecret(connection) ? connection.value : connection) as Props | undefined;
    const key = reveal(fields?.privateKey);
    return [...secretStrings(rest), ...secretStrings(fields ?? {}), ...(typeof key === "string" ? secretStrings(makeSecret(key)) : [])];
}

export function makeProvider(log: EngineLog): provider.Provider {
    async function run(urn: string, kind: Kind, command: string, inputs: Props, previous: Outputs | undefined): Promise<Outputs> {
        const redact = redactor(secretsToHide(inputs));
        const context: RunContext = { redact, logLine: (line) => log.log("info", redact(line), urn, true) };
        try {
            return await (kind === "local" ? runLocal : runRemote)(command, inputs, previous, context);
        } finally {
            await log.flushed();
        }
    }

    return {
        version: VERSION,

        async check(urn, _olds, news) {
            const { inputs, failures } = checkInputs(kindOf(urn), news as Props);
            return { inputs, failures };
        },

        async diff(_id, urn, olds, news) {
            const kind = kindOf(urn);
            const before = pickInputs(kind, olds as Props);
            const after = pickInputs(kind, news as Props);
            const changed = inputNames[kind].filter((key) => !deepEqual(reveal(before[key]), reveal(after[key])));
            return { changes: changed.length > 0, replaces: changed.filter((key) => key === "triggers"), deleteBeforeReplace: false };
        },

        async create(urn, inputs: Props) {
            const kind = kindOf(urn);
            const id = `${nameOf(urn)}${crypto.randomBytes(4).toString("hex")}`;
            const create = reveal(inputs.create);
            const outputs = typeof create === "string" ? await run(urn, kind, create, inputs, undefined) : { stdout: "", stderr: "" };
            return { id, outs: { ...inputs, ...outputs } };
        },

        async update(_id, urn, olds: Props, news: Props) {
            const kind = kindOf(urn);
            const command = reveal(news.update ?? news.create);
            if (typeof command !== "string") return { outs: { ...news, stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" } };
            const outputs = await run(urn, kind, command, news, previousOutputs(olds));
            return { outs: { ...news, ...outputs } };
        },

        async delete(_id, urn, props: Props) {
            const kind = kindOf(urn);
            const command = reveal(props.delete);
            if (typeof command !== "string") return;
            await run(urn, kind, command, pickInputs(kind, props), previousOutputs(props));
        },

        async read(id, urn, props: Props) {
            // Nothing to read back from a command: the state is what it is (the real provider's default).
            return { id, props, inputs: pickInputs(kindOf(urn), props ?? {}) };
        },

        async invoke(token) {
            throw new Error(`${token} is not implemented by ${STANDIN}; use a command:local:Command resource instead`);
        },

        async cancel() {
            killAll();
        },
    };
}
